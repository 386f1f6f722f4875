"""The JSON API (docs/desk.md "API"): the one the page uses, read-only but for the two acts
(judge an incident, command a node) and the session's own login/logout."""
from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

from aiohttp import web

from linewatch.commission import commands
from linewatch.commission.incidents import set_status
from linewatch.desk import params
from linewatch.desk.auth import COOKIE, client_address

log = logging.getLogger("linewatch.desk")
JUDGEMENTS = ("confirmed", "dismissed", "new")
NOTE_MAX = 2000


def problem(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/session", session)
    r.add_post("/api/login", login)
    r.add_post("/api/logout", logout)
    r.add_get("/api/line", line)
    r.add_get("/api/nodes", nodes)
    r.add_get("/api/nodes/{node}", node)
    r.add_post("/api/nodes/{node}/commands", command)
    r.add_get("/api/commands", command_list)
    r.add_get("/api/incidents", incidents)
    r.add_get("/api/incidents/{incident}", incident)
    r.add_post("/api/incidents/{incident}/status", judge)
    r.add_get("/api/events", events)


def _desk(request: web.Request):
    from linewatch.desk.app import STATE
    return request.app[STATE]


def _session(request: web.Request):
    from linewatch.desk.app import SESSION
    return request[SESSION]


def _ok(body: Any) -> web.Response:
    return web.json_response(body, dumps=lambda v: json.dumps(v, separators=(",", ":")))


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise problem(web.HTTPUnsupportedMediaType, "send JSON (Content-Type: application/json)")
    try:
        body = await request.json()
    except ValueError:
        raise problem(web.HTTPBadRequest, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise problem(web.HTTPBadRequest, "the body must be a JSON object")
    return body


def _checked(fn, *args):
    try:
        return fn(*args)
    except params.BadParameter as exc:
        raise problem(web.HTTPBadRequest, str(exc)) from None


# -- session --

async def session(request: web.Request) -> web.Response:
    s, desk = _session(request), _desk(request)
    return _ok({"operator": s.operator if s else None, "csrf": s.csrf if s else None,
                "observers": desk.config.desk.observers, "sides": list(desk.config.fusion.sides)})


async def login(request: web.Request) -> web.Response:
    desk, body = _desk(request), await _body(request)
    name, password = body.get("name"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise problem(web.HTTPBadRequest, "give name and password")
    from linewatch.desk.app import from_this_machine, scheme
    address = client_address(request.remote, request.headers.get("X-Forwarded-For")
                             if from_this_machine(request) else None)
    wait = desk.throttle.wait(address, name)
    if wait > 0:                       # refused before the password is checked
        refused = problem(web.HTTPTooManyRequests, "too many failed logins from this address or as this "
                                                   "operator: try again in %d s" % math.ceil(wait))
        refused.headers["Retry-After"] = str(math.ceil(wait))
        raise refused
    loop = asyncio.get_running_loop()
    ok = await loop.run_in_executor(None, desk.operators.check, name, password)
    if not ok:
        failures = desk.throttle.failed(address, name)
        if failures <= desk.throttle.FREE + 1 or failures % 10 == 0:   # then held back: a line per 10
            log.warning("desk: failed login as %r from %s (%d in a row)", name[:40], address, failures)
        await asyncio.sleep(1.0)
        raise problem(web.HTTPUnauthorized, "unknown operator or wrong password")
    desk.throttle.succeeded(address, name)
    desk.sessions.close(request.cookies.get(COOKIE))
    token, s = desk.sessions.open(name)
    log.info("desk: %s logged in from %s", name, address)
    response = _ok({"operator": name, "csrf": s.csrf})
    # Secure whenever the browser came over TLS, so the cookie never goes out in clear text
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=scheme(request) == "https")
    return response


async def logout(request: web.Request) -> web.Response:
    desk = _desk(request)
    desk.sessions.close(request.cookies.get(COOKIE))
    response = _ok({"operator": None})
    response.del_cookie(COOKIE, path="/")
    return response


# -- reads --

async def line(request: web.Request) -> web.Response:
    return _ok(await _desk(request).read(lambda v: v.line()))


async def nodes(request: web.Request) -> web.Response:
    return _ok({"nodes": await _desk(request).read(lambda v: v.nodes())})


async def node(request: web.Request) -> web.Response:
    node_id = _checked(params.node_id, request.match_info["node"])
    now = time.time_ns() // 1000
    body = await _desk(request).read(lambda v: v.node(node_id, now))
    if body is None:
        raise problem(web.HTTPNotFound, "node 0x%04x is not registered" % node_id)
    return _ok(body)


async def command_list(request: web.Request) -> web.Response:
    query = request.query
    extra = sorted(set(query) - {"node", "limit"})
    if extra:
        raise problem(web.HTTPBadRequest, f"unknown parameter {extra[0]!r}; commands take node, limit")
    node_id = _checked(params.node_id, query["node"]) if query.get("node") else None
    limit = _checked(params.integer, query, "limit", 1, 500) or 50
    return _ok({"commands": await _desk(request).read(lambda v: v.commands(node_id, limit))})


async def incidents(request: web.Request) -> web.Response:
    filters = _checked(params.incident_filters, request.query)
    found = await _desk(request).read(lambda v: v.incidents(filters))
    return _ok({"incidents": found, "count": len(found)})


async def incident(request: web.Request) -> web.Response:
    incident_id = _checked(params.incident_id, request.match_info["incident"])
    body = await _desk(request).read(lambda v: v.incident(incident_id))
    if body is None:
        raise problem(web.HTTPNotFound, "no incident %s" % incident_id)
    return _ok(body)


async def events(request: web.Request) -> web.StreamResponse:
    return await _desk(request).hub.stream(request)


# -- acts --

async def judge(request: web.Request) -> web.Response:
    desk, who = _desk(request), _session(request).operator
    incident_id = _checked(params.incident_id, request.match_info["incident"])
    body = await _body(request)
    status, note = body.get("status"), body.get("note", "")
    if status not in JUDGEMENTS:
        raise problem(web.HTTPBadRequest, f"status must be one of {', '.join(JUDGEMENTS)}")
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        raise problem(web.HTTPBadRequest, f"note must be text of at most {NOTE_MAX} characters")
    try:
        old = await desk.act(lambda agg: set_status(agg.store, incident_id, status, note.strip(), who))
    except KeyError:
        raise problem(web.HTTPNotFound, "no incident %s" % incident_id) from None
    except ValueError as exc:
        raise problem(web.HTTPConflict, str(exc)) from None
    log.info("desk: %s set incident %s %s -> %s", who, incident_id, old, status)
    desk.hub.publish("incident", {"id": incident_id})
    return _ok({"incident": incident_id, "old": old, "new": status, "who": who})


async def command(request: web.Request) -> web.Response:
    desk, who = _desk(request), _session(request).operator
    node_id = _checked(params.node_id, request.match_info["node"])
    body = await _body(request)
    name, args = body.get("command"), body.get("args", {})
    if not isinstance(args, dict):
        raise problem(web.HTTPBadRequest, "args must be a JSON object")
    try:
        commands.arguments(name, args)          # refused here, before the service is bothered
        entry = await desk.act(lambda agg: agg.command(node_id, name, args, who))
    except commands.CommandError as exc:
        raise problem(web.HTTPBadRequest, str(exc)) from None
    log.info("desk: %s sent %s to node 0x%04x (evidence row %d)", who, name, node_id, entry.id)
    desk.hub.publish("command", {"node": node_id, "evidence_id": entry.id})
    return _ok({"evidence_id": entry.id, "node": node_id, "command": name, "who": who,
                "args": json.loads(entry.note)["args"]})
