"""``tunebench dashboard``: a local, read-only web dashboard of experiments and grids (L4).

Needs the ``dashboard`` extra (starlette, uvicorn, plotly, matplotlib):
``pip install 'tunebench[dashboard]'``.
"""

from tunebench.dashboard.app import create_app, plotly_js_path, serve
from tunebench.dashboard.catalog import Catalog, GridRef, Refused
from tunebench.dashboard.live import LiveExperiment, RunStatus, run_status

__all__ = ["create_app", "serve", "plotly_js_path", "Catalog", "GridRef", "Refused", "LiveExperiment", "RunStatus",
           "run_status"]
