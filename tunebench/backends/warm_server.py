"""The prepared interpreter of warm starts (L2): a process that has already imported what a
trial needs, and forks each trial run from itself (a "zygote", as Android and
``multiprocessing``'s forkserver call it).

Run as a file by the trials' interpreter (``python warm_server.py CONTROL_FD PARENT_PID
KILL_ON_PARENT_DEATH(0|1) TARGET_JSON``); standard library only, so it runs under any Python >= 3.9
whether tunebench is installed there or not. The local backend's
:class:`tunebench.backends.warm.PreparedInterpreter` starts it and talks to it over the Unix
socket ``CONTROL_FD``.

Preparing (once, at start)
--------------------------
The target is a script (``{"kind": "script", "path": ...}``) or a function
(``{"kind": "function", "module": ..., "qualname": ..., "main_path": ...}``), plus ``preload``
(more module names) and ``sys_path`` (entries to put in front of ``sys.path``). For a script,
the modules it imports at its top level (``import x``, ``from x import y``, also inside top-level
``try``/``if`` blocks) are found by parsing it, not by running it; the user's own modules beside
the script are parsed the same way (not imported: they may change between trials) and the
modules *they* import are imported. For a function, its module is imported (a function of
``__main__`` is found by running the main file as ``__mp_main__``, as ``multiprocessing``'s spawn
does). A module that fails to import is skipped: the trial imports it again and gets the error of a
cold start. CUDA must not be initialised here (a forked child could not use it): if a preload did,
the interpreter says it is unusable and the backend starts trials cold.

It then writes one line ``ready JSON`` (what it imported, what failed, how long it took, whether it
is usable) and serves requests, one at a time.

Running a trial (each request)
------------------------------
A request is a JSON message with four descriptors (``SCM_RIGHTS``): the supervisor's status pipe,
the notify pipe of :func:`tunebench.report`, and the trial's ``stdout.log`` and ``stderr.log``.
The server forks; the child calls ``setsid`` and becomes the trial's supervisor
(:class:`trial_supervisor.Supervisor`: child subreaper, parent-death signal, log caps) and forks
the script's process, which, instead of ``exec``, takes the trial's argv, environment (set before
any user code: ``CUDA_VISIBLE_DEVICES`` too), working directory and fresh random seeds, and runs
the script as ``__main__`` (or calls the function with the config) and ends as an interpreter
would (non-daemon threads joined, ``atexit`` handlers run, exit code as ``python script.py``
would give). The server answers ``{"pid": SUPERVISOR_PID}``; everything else (results,
``pid``/``exit`` on the status pipe, signals) is as for a cold start.

The server exits when its control socket is closed (the backend shut down) and, with
``KILL_ON_PARENT_DEATH``, when the tuner dies (``PR_SET_PDEATHSIG``; the supervisors it forked then
get theirs and kill their trials).
"""

from __future__ import annotations

import ast
import atexit
import functools
import gc
import importlib
import importlib.util
import json
import os
import runpy
import signal
import socket
import sys
import threading
import time
import traceback
import types
import warnings
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_MAX_MESSAGE = 1 << 20  # bytes of one request (argv and environment)
_N_FDS = 4  # status, notify, stdout, stderr
_LOCAL_DEPTH = 4  # levels of the user's own modules parsed for imports


def _load_supervisor() -> types.ModuleType:
    """``trial_supervisor.py`` beside this file, under a private name (tunebench may not be
    importable by this interpreter, and a user module may be called ``trial_supervisor``)."""
    spec = importlib.util.spec_from_file_location(
        "_tunebench_trial_supervisor", os.path.join(_HERE, "trial_supervisor.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# -- preparing ----------------------------------------------------------------------------------


def _is_local(origin: str | None, root: str) -> bool:
    """Whether a module file belongs to the user's code beside the script (not to an
    environment that happens to live below that folder)."""
    if not origin or not root:
        return False
    origin = os.path.abspath(origin)
    if not origin.startswith(root + os.sep):
        return False
    parts = origin[len(root):].split(os.sep)
    return not any(p in ("site-packages", "dist-packages") for p in parts)


def top_level_imports(path: str) -> list[str]:
    """The absolute module names ``path`` imports at its top level, in order (``from a import
    b`` gives ``a`` and ``a.b``, the latter imported only if it is a module), without running it."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return []
    names: list[str] = []
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Try):
            todo[:0] = [*node.body, *node.orelse, *node.finalbody]
            for handler in node.handlers:
                todo[:0] = handler.body
        elif isinstance(node, ast.If):
            todo[:0] = [*node.body, *node.orelse]
    return list(dict.fromkeys(names))


def _preload_script(path: str, root: str, imported: list[str], failed: dict[str, str]) -> None:
    """Import what ``path`` imports; parse (do not import) the user's own modules it imports."""
    seen_files = {os.path.abspath(path)}
    files = [(os.path.abspath(path), 0)]
    while files:
        file, depth = files.pop(0)
        for name in top_level_imports(file):
            if name in sys.modules or name in failed:
                continue
            parent, _, leaf = name.rpartition(".")
            if parent and parent not in sys.modules:
                continue  # the package itself failed or is the user's own
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError, AttributeError) as err:
                if not parent:
                    failed[name] = f"{type(err).__name__}: {err}"
                continue
            if spec is None:
                if not parent:  # ``from a import b`` where b is not a module is fine
                    failed[name] = "ModuleNotFoundError"
                continue
            if _is_local(spec.origin, root):
                if depth < _LOCAL_DEPTH and spec.origin and spec.origin not in seen_files:
                    seen_files.add(spec.origin)
                    files.append((spec.origin, depth + 1))
                continue
            _import(name, imported, failed)


def _import(name: str, imported: list[str], failed: dict[str, str]) -> None:
    try:
        importlib.import_module(name)
        imported.append(name)
    except BaseException as err:  # noqa: BLE001 - any failure: the trial meets it again, cold
        failed[name] = f"{type(err).__name__}: {err}"[:500]


def _main_module(main_path: str) -> types.ModuleType:
    """The user's main file run as ``__mp_main__`` (its ``if __name__ == "__main__"`` block does
    not run), registered under that name; done once per interpreter."""
    module = sys.modules.get("__mp_main__")
    if module is None or getattr(module, "__file__", None) != main_path:
        namespace = runpy.run_path(main_path, run_name="__mp_main__")
        module = types.ModuleType("__mp_main__")
        module.__dict__.update(namespace)
        sys.modules["__mp_main__"] = module
    return module


def resolve_function(target: dict[str, Any]) -> Any:
    """The function ``target`` names (module, or main file, and qualified name)."""
    if target.get("main_path"):
        module = _main_module(target["main_path"])
    else:
        module = importlib.import_module(target["module"])
    value = module
    for part in target["qualname"].split("."):
        value = getattr(value, part)
    return value


def _set_sys_path(target: dict[str, Any]) -> None:
    """``sys.path`` as the target's code expects it: this file's folder (first, since Python ran
    this file) replaced by the script's folder, as for ``python SCRIPT``; for a function, the
    tuner's ``sys.path`` entries first, as ``multiprocessing``'s spawn does."""
    if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
        del sys.path[0]
    if target["kind"] == "script":
        sys.path.insert(0, os.path.dirname(os.path.abspath(target["path"])))
    else:
        sys.path[:0] = [entry for entry in target.get("sys_path") or [] if entry not in sys.path]


def prepare(target: dict[str, Any]) -> dict[str, Any]:
    """Import what the target needs; returns what the ``ready`` line says."""
    t0 = time.perf_counter()
    imported: list[str] = []
    failed: dict[str, str] = {}
    _set_sys_path(target)
    if target["kind"] == "script":
        root = os.path.dirname(os.path.abspath(target["path"]))
        _preload_script(target["path"], root, imported, failed)
    else:
        try:
            resolve_function(target)
            imported.append(target.get("main_path") or target["module"])
        except BaseException as err:  # noqa: BLE001 - the trial meets it again, cold
            failed[target.get("main_path") or target["module"]] = f"{type(err).__name__}: {err}"[:500]
    for name in target.get("preload") or []:
        if name not in sys.modules:
            _import(name, imported, failed)
    usable, why = True, ""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and getattr(cuda, "is_initialized", lambda: False)():
        usable, why = False, "CUDA was initialised while importing the preloaded modules"
    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()  # fewer pages copied on write when a child's collector runs
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        threads = threading.active_count()
    return {"imported": imported, "failed": failed, "seconds": round(time.perf_counter() - t0, 3),
            "usable": usable, "why": why, "threads": threads, "python": sys.version.split()[0]}


# -- running one trial (in the script's process) ------------------------------------------------


def _exit_code(code: object) -> int:
    """The exit status ``sys.exit(code)`` gives an interpreter."""
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except Exception:  # noqa: BLE001
        pass
    return 1


def _reseed() -> None:
    """Fresh seeds, as a new interpreter would have (``random`` reseeds itself at fork)."""
    legacy = sys.modules.get("numpy.random")
    if legacy is not None:
        try:
            legacy.seed()
        except Exception:  # noqa: BLE001
            pass
    torch_cuda = sys.modules.get("torch.cuda")
    count = getattr(torch_cuda, "device_count", None)
    if count is not None and hasattr(count, "cache_clear"):
        count.cache_clear()  # cached under the server's CUDA_VISIBLE_DEVICES


def _user_traceback(script: str | None) -> types.TracebackType | None:
    """The current exception's traceback from the user's first frame on."""
    _, _, tb = sys.exc_info()
    first = tb
    while first is not None and script is not None and first.tb_frame.f_code.co_filename != script:
        first = first.tb_next
    if first is None:  # (a function target: drop this module's frames)
        first = tb
        while first is not None and first.tb_frame.f_code.co_filename == __file__:
            first = first.tb_next
    return first or tb


def _finish_like_an_interpreter(code: int) -> int:
    """Join non-daemon threads, run ``atexit`` handlers, flush: what Python does at exit."""
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        try:
            shutdown()
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    return code


def run_request(request: dict[str, Any], target: dict[str, Any]) -> int:
    """In the script's process (forked, never exec'd): take the trial's environment, working
    directory and fresh seeds, and run it; returns its exit code."""
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    _reseed()
    return run_target(target, request["argv"], request.get("config"))


def run_target(target: dict[str, Any], argv: list[str], config_json: str | None) -> int:
    """Run the script as ``__main__`` (or call the function) and end as an interpreter would;
    returns the exit code ``python ...`` would have."""
    script = None
    interrupted = False
    sys.argv = argv[1:]  # as Python sets it: [script, args...]
    try:
        if target["kind"] == "script":
            script = os.path.abspath(target["path"])
            runpy.run_path(script, run_name="__main__")
        else:
            run_function(target, config_json or "{}")
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        interrupted = True
        code = 130
    except BaseException:  # noqa: BLE001 - as an interpreter does: print it, exit 1
        exc_type, value, _ = sys.exc_info()
        assert exc_type is not None and value is not None
        user_tb = _user_traceback(script)
        sys.excepthook(exc_type, value.with_traceback(user_tb), user_tb)
        code = 1
    code = _finish_like_an_interpreter(code)
    if interrupted:  # as CPython does: die of SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


def run_function(target: dict[str, Any], config_json: str) -> None:
    """Call the target function with the config; report what it returns (a mapping of metrics,
    or a number for the target's metric)."""
    fn = resolve_function(target)
    result = fn(json.loads(config_json))
    if result is None:
        return
    from tunebench.reporting import report  # deferred: only function targets, where tunebench is installed

    if isinstance(result, dict):
        report(**result)
    elif isinstance(result, (int, float)) and not isinstance(result, bool) and target.get("metric"):
        report(**{target["metric"]: result})
    else:
        raise TypeError(f"{target['qualname']}() returned {type(result).__name__}; return None, a dict of "
                        "metrics or a number (the metric), or call tunebench.report(...)")


# -- serving ------------------------------------------------------------------------------------


def _reap(*_: object) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _fork_quietly() -> int:
    """``os.fork`` without Python 3.12's warning about forking a process with threads (a BLAS
    pool, say: the libraries that start one at import handle fork themselves)."""
    saved = list(warnings.filters)
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork.*")
    try:
        return os.fork()
    finally:
        warnings.filters[:] = saved  # type: ignore[index]  # a list at run time
        mutated = getattr(warnings, "_filters_mutated", None)
        if mutated is not None:
            mutated()


def serve(sock: socket.socket, parent: int, kill_on_parent_death: bool, target: dict[str, Any],
          supervisor_module: types.ModuleType) -> None:
    """Answer fork requests until the socket closes."""
    me = os.getpid()
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, _N_FDS)
        except InterruptedError:
            continue
        except OSError:
            message, fds = b"", []
        if not message:  # the backend closed it: end once the runs forked from here have ended
            for fd in fds:
                os.close(fd)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            while True:
                try:
                    os.waitpid(-1, 0)
                except ChildProcessError:
                    return
                except InterruptedError:
                    continue
        try:
            request = json.loads(message)
            if len(fds) != _N_FDS:
                raise ValueError(f"expected {_N_FDS} descriptors, got {len(fds)}")
            pid = _fork_quietly()
        except (ValueError, OSError) as err:
            for fd in fds:
                os.close(fd)
            sock.sendall(json.dumps({"error": f"{type(err).__name__}: {err}"}).encode())
            continue
        if pid == 0:  # the trial's supervisor
            code = 1
            try:
                sock.close()
                status_fd, notify_fd, out_fd, err_fd = fds
                os.setsid()
                os.dup2(out_fd, 1)
                os.dup2(err_fd, 2)
                os.close(out_fd)
                os.close(err_fd)
                os.set_inheritable(notify_fd, True)
                if request.get("notify_env"):  # its number in this process
                    request["env"][request["notify_env"]] = str(notify_fd)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                supervisor = supervisor_module.Supervisor(
                    status_fd, me, kill_on_parent_death, int(request.get("log_limit", 0)), request["argv"],
                    run_child=functools.partial(run_request, request, target))
                code = supervisor.run()
            except BaseException:  # noqa: BLE001 - say why on the trial's stderr
                try:
                    traceback.print_exc()
                    sys.stderr.flush()
                except BaseException:  # noqa: BLE001
                    pass
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        sock.sendall(json.dumps({"pid": pid}).encode())


def main(argv: list[str]) -> int:
    if argv[:1] == ["run-function"]:  # a cold start of a function target: TARGET_JSON CONFIG_JSON
        target = json.loads(argv[1])
        _set_sys_path(target)
        return run_target(target, [sys.executable, *sys.argv], argv[2])
    control_fd, parent, kill_on_parent_death, target_json = argv[:4]
    kill = kill_on_parent_death == "1"
    supervisor_module = _load_supervisor()
    prctl = supervisor_module._prctl()
    if prctl is not None and kill:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if kill and os.getppid() != int(parent):
        return 1  # the tuner died before that took effect
    sock = socket.socket(fileno=int(control_fd))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the tuner's Ctrl-C is the tuner's
    target = json.loads(target_json)
    info = prepare(target)
    sock.sendall(json.dumps({"ready": info}).encode())
    if not info["usable"]:
        return 0
    signal.signal(signal.SIGCHLD, _reap)
    serve(sock, int(parent), kill, target, supervisor_module)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
