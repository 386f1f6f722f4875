"""The desk from the command line: `linewatch nodes command` logs in as an operator and sends
its command through the running aggregator's desk, so it is signed under the aggregator's own
boot and downlink sequence (a second sender would break the node's replay rule) and recorded
with the operator's name, exactly as from the page."""
from __future__ import annotations

import http.cookiejar
import json
import time
import urllib.error
import urllib.request
from typing import Any

from linewatch.commission.config import Config


class DeskClientError(RuntimeError):
    """The desk could not be reached or refused; the message says which and why."""


def url_of(config: Config) -> str:
    address = config.desk.address()
    if address is None:
        raise DeskClientError("[desk] listen is empty: this aggregator serves no desk; give --desk URL")
    host, port = address
    if port == 0:
        raise DeskClientError("[desk] listen has port 0 (any free port): give --desk URL as the aggregator's "
                              "log says it ('desk at http://...')")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return "http://%s:%d/" % ("[%s]" % host if ":" in host else host, port)


class DeskClient:
    def __init__(self, url: str, timeout_s: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.csrf = ""
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def _call(self, path: str, body: dict | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="GET" if body is None else "POST")
        if body is not None:
            request.add_header("Content-Type", "application/json")
            if self.csrf:
                request.add_header("X-CSRF-Token", self.csrf)
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            raise DeskClientError(f"the desk at {self.url} refused: {message} ({exc.code})") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeskClientError(f"no desk at {self.url} ({reason}): is `linewatch aggregator` running "
                                  f"with its desk?") from None

    def login(self, name: str, password: str) -> None:
        self.csrf = self._call("/api/login", {"name": name, "password": password})["csrf"]

    def command(self, node: int, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return self._call("/api/nodes/0x%04x/commands" % node, {"command": name, "args": args})

    def effect(self, node: int, evidence_id: int) -> dict[str, Any] | None:
        for c in self._call("/api/commands?node=0x%04x&limit=50" % node)["commands"]:
            if c["evidence_id"] == evidence_id:
                return c["effect"]
        return None

    def wait_effect(self, node: int, evidence_id: int, wait_s: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + wait_s
        effect = self.effect(node, evidence_id)
        while effect is not None and effect["state"] == "waiting" and time.monotonic() < deadline:
            time.sleep(0.5)
            effect = self.effect(node, evidence_id)
        return effect
