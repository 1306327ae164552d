"""Where experiment grids live on disk (shared by ``tunebench experiment``, ``plot`` and ``report``).

Layout: ``<results root>/<experiment tag>/<benchmark>/<method>/<seed>/``, each a normal
experiment folder (see :mod:`tunebench.store`). The results root is ``--results-root``, else the
environment variable ``TUNEBENCH_RESULTS``, else ``~/tunebench-results``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tunebench.errors import UserError

__all__ = ["RESULTS_ENV", "DEFAULT_RESULTS_ROOT", "results_root", "experiment_path", "check_tag"]

#: environment variable naming the results root
RESULTS_ENV = "TUNEBENCH_RESULTS"
#: results root when neither ``--results-root`` nor ``TUNEBENCH_RESULTS`` is given
DEFAULT_RESULTS_ROOT = Path("~/tunebench-results")

_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def results_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The results root: ``root`` if given, else ``$TUNEBENCH_RESULTS``, else ``~/tunebench-results``
    (user home expanded; the folder is not created here)."""
    if root is None or str(root) == "":
        root = os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS_ROOT
    return Path(root).expanduser()


def check_tag(tag: str | None) -> str:
    """``tag`` if it is a usable experiment tag (a folder name: letters, digits, ``.``, ``_``,
    ``-``; not starting with ``.``/``-``).

    Raises:
        UserError: empty or missing tag, or one with other characters.
    """
    if not tag:
        raise UserError("an experiment tag is needed: pass --experiment-tag NAME (a folder name under the "
                        "results root)")
    if not _TAG.match(tag):
        raise UserError(f"experiment tag {tag!r} is not a plain folder name: use letters, digits, '.', '_' "
                        "and '-' (not starting with '.' or '-')")
    return tag


def experiment_path(root: str | os.PathLike[str] | None, tag: str, benchmark: str, method: str, seed: int) -> Path:
    """Folder of one experiment of a grid: ``<root>/<tag>/<benchmark>/<method>/<seed>``."""
    return results_root(root) / check_tag(tag) / benchmark / method / str(int(seed))
