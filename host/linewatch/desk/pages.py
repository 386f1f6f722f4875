"""The page and its assets: one HTML shell, the desk's script and style, and the vendored
Leaflet and uPlot (static/vendor/README.md), all shipped in the package. The page renders only
what the JSON API returns; its views (map, incidents, an incident, nodes, a node) are routes
inside the page (#/incidents, #/node/0x0102 ...), so a link to any of them works."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from linewatch.commission.config import Config

STATIC = Path(__file__).with_name("static")


def routes(app: web.Application, config: Config) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/login", index)
    app.router.add_static("/static/", STATIC, follow_symlinks=False, append_version=False)
    if config.desk.basemap_file:
        path = Path(config.desk.basemap_file)

        async def basemap(request: web.Request) -> web.FileResponse:
            if not path.is_file():
                raise web.HTTPNotFound(text="basemap %s: no such file" % path.name)
            return web.FileResponse(path)
        app.router.add_get("/basemap", basemap)


async def index(request: web.Request) -> web.FileResponse:
    response = web.FileResponse(STATIC / "index.html")
    response.headers["Cache-Control"] = "no-store"
    return response
