"""The desk's web server, inside the aggregator's asyncio loop (aiohttp; docs/decisions.md).

    desk = await start_desk(config, master, aggregator)   # None when [desk] listen = ""
    ...
    await desk.stop()

Reads run in one thread of the desk's own with a read-only store (SQLite WAL or PostgreSQL),
so a page never waits for the service's commit and the service never waits for a page. Acts
(judging an incident, a node command) are handed to the service (Aggregator.act), which runs
them between rounds. A desk that cannot listen (address taken) is logged and left out: the
ingest goes on.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from linewatch.commission.config import Config
from linewatch.commission.store import StoreError, open_store
from linewatch.desk import api, pages
from linewatch.desk.auth import COOKIE, LoginThrottle, Operators, Sessions, csrf_ok
from linewatch.desk.live import Hub
from linewatch.desk.views import Views

log = logging.getLogger("linewatch.desk")

# No external source of any kind; Leaflet and uPlot set element styles from script (allowed).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin",
           "Cross-Origin-Resource-Policy": "same-origin",
           "Permissions-Policy": "geolocation=(), camera=(), microphone=()"}
# Reachable without a session: the page shell and its assets (it shows the login form) and
# the login itself; everything else needs a session, or observers = true for reading.
OPEN = ("/", "/login", "/api/session", "/api/login", "/favicon.ico")
OPEN_PREFIX = ("/static/",)
# The header of the page's own refreshes (live updates): they do not keep a session alive.
REFRESH = "X-Desk-Refresh"

STATE = web.AppKey("desk", object)
SESSION = web.RequestKey("session", object)


class Desk:
    def __init__(self, config: Config, master: bytes, service: Any) -> None:
        self.config = config
        self.service = service           # the Aggregator: acts and listeners; None in tests of reads alone
        self.master = master
        self.operators = Operators(config.desk.operators_path(config.store))
        self.sessions = Sessions(config.desk.session_minutes)
        self.throttle = LoginThrottle()
        self.hub = Hub()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="linewatch-desk")
        self._views: Views | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    # -- reads and acts --

    def _open_views(self) -> Views:
        if self._views is None:
            store = open_store(self.config.store.target, readonly=True)
            self._views = Views(store, self.config, self.master)
        return self._views

    async def read(self, fn: Callable[[Views], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(self._open_views()))

    async def act(self, fn: Callable[[Any], Any], timeout_s: float = 10.0) -> Any:
        if self.service is None:
            raise web.HTTPServiceUnavailable(text="no service to act through")
        try:
            return await asyncio.wait_for(self.service.act(fn), timeout_s)
        except TimeoutError:
            raise api.problem(web.HTTPServiceUnavailable, "the service did not take the act within %.0f s "
                                                          "(is it connected to the broker?)" % timeout_s)

    # -- serving --

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._headers, self._access], client_max_size=64 * 1024)
        app[STATE] = self
        api.routes(app)
        pages.routes(app, self.config)
        return app

    async def start(self) -> str:
        host, port = self.config.desk.address()
        self.runner = web.AppRunner(self.application(), access_log=None, shutdown_timeout=2.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        bound = self.runner.addresses[0]
        shown = "[%s]" % bound[0] if ":" in bound[0] else bound[0]
        self.url = "http://%s:%d/" % (shown, bound[1])
        if self.service is not None:
            self.service.listeners.append(self.hub.listener)
        return self.url

    async def stop(self) -> None:
        self.hub.close()
        if self.service is not None and self.hub.listener in self.service.listeners:
            self.service.listeners.remove(self.hub.listener)
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        views, self._views = self._views, None
        if views is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, views.store.close)
        self._pool.shutdown(wait=False)

    # -- middlewares --

    @web.middleware
    async def _headers(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        response.headers.update(HEADERS)
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        if isinstance(response, web.HTTPException) and response.status >= 300:
            raise response
        return response

    @web.middleware
    async def _access(self, request: web.Request, handler) -> web.StreamResponse:
        session = self.sessions.get(request.cookies.get(COOKIE), touch=REFRESH not in request.headers)
        request[SESSION] = session
        if request.method not in ("GET", "HEAD"):
            if not self._same_origin(request):
                raise api.problem(web.HTTPForbidden, "cross-origin request refused")
            if request.path != "/api/login" and session is None:
                raise api.problem(web.HTTPUnauthorized, "log in as an operator to do this")
            if request.path != "/api/login" and not csrf_ok(session, request.headers.get("X-CSRF-Token")):
                raise api.problem(web.HTTPForbidden, "missing or wrong CSRF token (reload the page)")
        elif session is None and not self.config.desk.observers and not self._open(request.path):
            raise api.problem(web.HTTPUnauthorized, "log in to see the desk (or set [desk] observers = true)")
        return await handler(request)

    @staticmethod
    def _open(path: str) -> bool:
        return path in OPEN or path.startswith(OPEN_PREFIX)

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or origin == "%s://%s" % (scheme(request), request.host)


def from_this_machine(request: web.Request) -> bool:
    peer = request.remote or ""
    return peer.startswith("127.") or peer == "::1"


def scheme(request: web.Request) -> str:
    """"https" when the browser reached the desk over TLS: the desk's own socket, or a TLS proxy on
    this machine that says so (X-Forwarded-Proto, or Forwarded's proto; docs/desk.md). A proxy's
    word counts from this machine only: anyone else could claim it."""
    if request.secure:
        return "https"
    if from_this_machine(request):
        said = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        forwarded = request.forwarded[0].get("proto", "").lower() if request.forwarded else ""
        if "https" in (said, forwarded):
            return "https"
    return request.scheme


async def start_desk(config: Config, master: bytes, service: Any) -> Desk | None:
    """The desk serving, or None when it is off or cannot listen (said in the log)."""
    if config.desk.address() is None:
        return None
    desk = Desk(config, master, service)
    try:
        url = await desk.start()
    except OSError as exc:
        log.error("desk: cannot listen on %s (%s): the service runs without its desk",
                  config.desk.listen, exc.strerror or exc)
        await desk.stop()
        return None
    except StoreError as exc:
        log.error("desk: %s: the service runs without its desk", exc)
        await desk.stop()
        return None
    log.info("desk at %s (%s)", url, "observers may read without logging in" if config.desk.observers
             else "operators log in; add one with `linewatch desk add-operator NAME`")
    return desk
