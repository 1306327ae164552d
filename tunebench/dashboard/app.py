"""The dashboard's web application (starlette) and its server (uvicorn).

Pages (HTML shells whose script, ``static/dashboard.js``, polls the JSON API and draws with
plotly): ``/`` the overview, ``/experiments/{id}`` one experiment, ``/grids/{id}`` one grid.
JSON API: ``/api/experiments``, ``/api/experiments/{id}``, ``/api/grids``, ``/api/grids/{id}``
and the grids' figures at ``/api/grid-figure/{name}?grid={id}``. Everything is read-only: every
route answers GET (and HEAD) only. ``plotly.min.js`` is served from the installed plotly package;
nothing is fetched from the internet.
"""

from __future__ import annotations

import contextlib
import html
import logging
import socket
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import plotly
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tunebench.dashboard.catalog import Catalog, Refused
from tunebench.dashboard.grids import GridRenderer
from tunebench.errors import UserError

__all__ = ["create_app", "serve", "plotly_js_path"]

logger = logging.getLogger(__name__)

_STATIC = ("dashboard.js", "dashboard.css")


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` that ships inside the installed plotly package."""
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _page(title: str, page: str, item_id: str = "") -> HTMLResponse:
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} · tunebench</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/plotly.min.js"></script>
</head>
<body data-page="{page}" data-id="{html.escape(item_id)}">
<header><a href="/">tunebench dashboard</a> <span id="crumb">{html.escape(title)}</span>
<span id="updated"></span></header>
<main id="main"><p class="muted">loading…</p></main>
<script src="/static/dashboard.js"></script>
</body></html>"""
    return HTMLResponse(body)


def create_app(roots: list[Path]) -> Starlette:
    """The dashboard's ASGI application over the experiments and grids under ``roots``
    (:class:`~tunebench.dashboard.catalog.Catalog`). Raises
    :class:`~tunebench.errors.UserError` if a root is not a folder."""
    catalog = Catalog(roots)
    renderer = GridRenderer()

    def refused(e: Refused) -> JSONResponse:
        return JSONResponse({"error": str(e)}, status_code=e.status)

    def overview_page(request: Request) -> Response:
        return _page("overview", "overview")

    def experiment_page(request: Request) -> Response:
        exp_id = request.path_params["id"]
        try:
            catalog.experiment(exp_id)
        except Refused as e:
            return HTMLResponse(f"<p>{html.escape(str(e))}</p>", status_code=e.status)
        return _page(f"experiment {exp_id}", "experiment", exp_id)

    def grid_page(request: Request) -> Response:
        grid_id = request.path_params["id"]
        try:
            catalog.grid(grid_id)
        except Refused as e:
            return HTMLResponse(f"<p>{html.escape(str(e))}</p>", status_code=e.status)
        return _page(f"grid {grid_id}", "grid", grid_id)

    def api_experiments(request: Request) -> Response:
        return JSONResponse(catalog.overview())

    def api_experiment(request: Request) -> Response:
        exp_id = request.path_params["id"]
        try:
            live = catalog.experiment(exp_id)
        except Refused as e:
            return refused(e)
        detail: dict[str, Any] = {"id": exp_id, **live.detail()}
        return JSONResponse(detail)

    def api_grids(request: Request) -> Response:
        return JSONResponse({"grids": catalog.overview()["grids"]})

    def api_grid(request: Request) -> Response:
        grid_id = request.path_params["id"]
        try:
            grid = catalog.grid(grid_id)
            folders = [catalog.experiment(e).path for e in grid.experiments]
        except Refused as e:
            return refused(e)
        view = renderer.view(grid, folders)
        return JSONResponse({"id": grid.id, "tag": grid.tag, "experiments": list(grid.experiments),
                             **view.to_dict()})

    def api_grid_figure(request: Request) -> Response:
        path = renderer.figure(request.query_params.get("grid", ""), request.path_params["name"])
        if path is None or not path.is_file():
            return JSONResponse({"error": "no such figure"}, status_code=404)
        return FileResponse(path, media_type="image/png")

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(plotly_js_path(), media_type="text/javascript")
        if name not in _STATIC:
            return JSONResponse({"error": "no such file"}, status_code=404)
        text = resources.files("tunebench.dashboard").joinpath("static").joinpath(name).read_text(encoding="utf-8")
        media = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(text, media_type=media)

    routes = [
        Route("/", overview_page, methods=["GET"]),
        Route("/experiments/{id:path}", experiment_page, methods=["GET"]),
        Route("/grids/{id:path}", grid_page, methods=["GET"]),
        Route("/api/experiments", api_experiments, methods=["GET"]),
        Route("/api/experiments/{id:path}", api_experiment, methods=["GET"]),
        Route("/api/grids", api_grids, methods=["GET"]),
        Route("/api/grids/{id:path}", api_grid, methods=["GET"]),
        Route("/api/grid-figure/{name}", api_grid_figure, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            renderer.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.catalog = catalog
    return app


def serve(roots: list[Path], host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the dashboard of ``roots`` at ``http://host:port/`` until interrupted (Ctrl-C).
    Raises :class:`~tunebench.errors.UserError` if a root is not a folder or the address is taken."""
    app = create_app(roots)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}); choose another --port, or stop "
                            "what uses it") from None
    logger.info("tunebench dashboard on http://%s:%d/", host, port)
    print(f"tunebench dashboard: http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
