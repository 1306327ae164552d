"""Warm starts (L2): the backend's side of a prepared interpreter (see
:mod:`tunebench.backends.warm_server` for the other side).

Every trial run of a cold start pays for a new interpreter and its imports (about 3 s for
``import torch`` on a small CPU machine, 4-7 s on a GPU machine). A :class:`PreparedInterpreter`
imports them once and forks each run from itself, so a run starts in tens of milliseconds.
The fork comes with the same guarantees as a cold start: the run's supervisor is a child
subreaper with the parent-death signal, its script process has its own process group, the
trial's argv, environment, working directory, descriptors and fresh seeds.

A prepared interpreter that cannot be used (it failed to start, CUDA was initialised while
preloading, it died) is reported once with a warning, and the backend starts trials cold.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["WARM_SERVER", "FunctionTarget", "PreparedInterpreter", "WarmStartError"]

logger = logging.getLogger(__name__)

WARM_SERVER = str(Path(__file__).with_name("warm_server.py"))
_MAX_MESSAGE = 1 << 20
#: seconds a prepared interpreter may take to import its modules before the backend gives up on it
READY_TIMEOUT = 600.0
_REPLY_TIMEOUT = 60.0  # seconds to answer a fork request once ready


class WarmStartError(RuntimeError):
    """The prepared interpreter cannot start a run (the caller starts it cold)."""


@dataclass(frozen=True)
class FunctionTarget:
    """A Python function that trials call with their config, found by reference (never pickled):
    ``module`` and ``qualname``, or ``main_path`` (the file run as ``__main__`` when the function
    was defined there; the worker runs it as ``__mp_main__``, so its ``if __name__ ==
    "__main__":`` block does not run). ``sys_path``: entries put in front of the worker's
    ``sys.path`` (the tuner's, so the module imports as it did there). ``metric``: the name under
    which a number the function returns is reported."""

    module: str
    qualname: str
    main_path: str | None = None
    sys_path: tuple[str, ...] = ()
    metric: str | None = None

    @classmethod
    def of(cls, fn: Any, *, metric: str | None = None) -> FunctionTarget:
        """The reference to ``fn``; raises ``ValueError`` naming the fix when a worker process
        could not find it (a lambda, a nested function, a function of an interactive session)."""
        module = getattr(fn, "__module__", None)
        qualname = getattr(fn, "__qualname__", None)
        if not callable(fn) or not module or not qualname:
            raise ValueError(f"{fn!r} is not a function; pass a function defined at the top level of a module")
        if "<lambda>" in qualname or "<locals>" in qualname:
            raise ValueError(f"{qualname} is defined inside another function or is a lambda; worker processes find "
                             "the function by name: define it at the top level of a module or script")
        main_path = None
        if module == "__main__":
            main = sys.modules.get("__main__")
            main_file = getattr(main, "__file__", None)
            if not main_file:
                raise ValueError(f"{qualname} is defined in an interactive session (no file): worker processes "
                                 "find the function by name; put it in a .py file and import it from there")
            main_path = str(Path(main_file).resolve())
        entries = [str(Path(p).resolve()) if p else os.getcwd() for p in sys.path]
        root = _import_root(sys.modules.get(module), module)
        if root is not None and root not in entries:  # (sys.path changed since the import)
            entries.insert(0, root)
        return cls(module=module, qualname=qualname, main_path=main_path, sys_path=tuple(entries), metric=metric)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FunctionTarget:
        return cls(module=data["module"], qualname=data["qualname"], main_path=data.get("main_path"),
                   sys_path=tuple(data.get("sys_path") or ()), metric=data.get("metric"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "function", "module": self.module, "qualname": self.qualname,
                "main_path": self.main_path, "sys_path": list(self.sys_path), "metric": self.metric}

    @property
    def name(self) -> str:
        """``module:qualname`` (``path/to/main.py:qualname`` for a function of ``__main__``)."""
        return f"{self.main_path or self.module}:{self.qualname}"


def _import_root(module: Any, name: str) -> str | None:
    """The ``sys.path`` entry ``module`` was imported from (its file's folder, up one level per
    package), or None."""
    file = getattr(module, "__file__", None)
    if not file or name == "__main__":
        return None
    folder = Path(file).resolve().parent
    levels = name.count(".") + (1 if Path(file).name == "__init__.py" else 0)
    for _ in range(levels):
        folder = folder.parent
    return str(folder)


@dataclass
class PreparedInterpreter:
    """One prepared interpreter for one target (a script, or a :class:`FunctionTarget`).

    Args:
        python: the trials' interpreter.
        target: ``{"kind": "script", "path": ...}`` or :meth:`FunctionTarget.to_dict`.
        env: its environment (the trials' environment without the per-trial variables).
        cwd: its working directory.
        preload: more modules to import (``--preload``).
        kill_on_parent_death: it (and the runs it forked) die with this process (Linux).

    It is started by :meth:`start` (from the thread that starts trials: the parent-death signal
    is tied to it) and must be closed with :meth:`close`.
    """

    python: str
    target: dict[str, Any]
    env: dict[str, str]
    cwd: str
    preload: Sequence[str] = ()
    kill_on_parent_death: bool = True
    ready_timeout: float = READY_TIMEOUT
    info: dict[str, Any] = field(default_factory=dict)  #: what its ``ready`` message said
    _process: subprocess.Popen[bytes] | None = None
    _sock: socket.socket | None = None
    _stderr: Any = None
    _ready: bool = False
    broken: str | None = None  #: why it cannot be used (None: usable)

    def start(self) -> None:
        """Launch it (returns at once; it imports in the background). Idempotent."""
        if self._process is not None or self.broken:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._stderr = tempfile.TemporaryFile()
        target = {**self.target, "preload": list(self.preload)}
        try:
            self._process = subprocess.Popen(
                [self.python, WARM_SERVER, str(theirs.fileno()), str(os.getpid()),
                 "1" if self.kill_on_parent_death else "0", json.dumps(target)],
                env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=self._stderr, pass_fds=(theirs.fileno(),), start_new_session=True)
        except OSError as err:
            ours.close()
            self._fail(f"could not start {self.python}: {err}")
            return
        finally:
            theirs.close()
        self._sock = ours
        self._started = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def wait_ready(self) -> bool:
        """Wait until it has imported its modules (at most ``ready_timeout`` seconds from its
        start); whether it can fork runs. Called before the first run."""
        if self._ready:
            return True
        if self.broken:
            return False
        self.start()
        if self._sock is None:
            return False
        reply = self._receive(self.ready_timeout - (time.monotonic() - self._started), "to prepare")
        if reply is None:
            return False
        info = reply.get("ready")
        if not isinstance(info, dict):
            self._fail(f"unexpected message {reply!r}")
            return False
        self.info = info
        if not info.get("usable"):
            self._fail(str(info.get("why")))
            return False
        self._ready = True
        failed = info.get("failed") or {}
        logger.info("prepared interpreter (pid %s, Python %s) imported %s in %.2f s%s", self.pid,
                    info.get("python"), ", ".join(info.get("imported") or []) or "nothing", info.get("seconds", 0.0),
                    f"; could not import {', '.join(failed)} (trials will say why)" if failed else "")
        return True

    def fork(self, request: Mapping[str, Any], fds: Sequence[int]) -> int:
        """Fork a run: ``request`` (argv, env, cwd, log_limit, config) and the descriptors (status
        pipe, notify pipe, stdout.log, stderr.log), which stay ours to close. Returns the pid of
        the run's supervisor. Raises :class:`WarmStartError` when it cannot (then it is broken)."""
        if not self.wait_ready():
            raise WarmStartError(self.broken or "not ready")
        assert self._sock is not None
        try:
            socket.send_fds(self._sock, [json.dumps(request).encode()], list(fds))
        except OSError as err:
            self._fail(f"lost: {err}")
            raise WarmStartError(self.broken or "") from err
        reply = self._receive(_REPLY_TIMEOUT, "to fork")
        if reply is None or not isinstance(reply.get("pid"), int):
            if reply is not None:
                self._fail(str(reply.get("error", reply)))
            raise WarmStartError(self.broken or "no answer")
        return int(reply["pid"])

    def close(self, wait: bool = True) -> None:
        """End it: it exits once the runs it forked have ended (their supervisors are its
        children, and die with it). ``wait``: wait up to 5 s for that, then kill it (and so
        them), as at the backend's shutdown; otherwise leave it to end by itself. Idempotent."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        process, self._process = self._process, None
        if process is not None and wait:
            try:
                process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._ready = False

    # -- internals ------------------------------------------------------------------------------

    def _receive(self, timeout: float, doing: str) -> dict[str, Any] | None:
        assert self._sock is not None
        self._sock.settimeout(max(0.001, timeout))
        try:
            data = self._sock.recv(_MAX_MESSAGE)
        except TimeoutError:
            self._fail(f"took more than {timeout:.0f} s {doing}")
            return None
        except OSError as err:
            self._fail(f"lost: {err}")
            return None
        if not data:
            self._fail("exited")
            return None
        try:
            reply: dict[str, Any] = json.loads(data)
        except ValueError:
            self._fail(f"unexpected message {data[:200]!r}")
            return None
        return reply

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - 2000))
            text: str = self._stderr.read().decode("utf-8", errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f"; its stderr ends with: {text[-2000:]}" if text else ""

    def _fail(self, why: str) -> None:
        if self.broken is None:
            self.broken = why + self._stderr_tail()
            logger.warning("warm starts are off: the prepared interpreter %s; trials start cold", self.broken)
        self.close(wait=False)  # runs it forked go on
