"""Folder locks (L1 persistence): one process at a time works on an experiment folder.

A lock is an exclusive ``flock`` on a file in the folder. The kernel releases it when the process
that holds it ends, however it ends (exit, exception, SIGKILL, a crash of the machine), so a
dead holder never leaves a stale lock behind and nothing has to be cleaned up by hand.

The holder writes who it is into the file (pid, host, start time: :class:`LockHolder`), for the
message of a process it keeps out. The file stays when the lock is released (deleting it would
race with a process about to lock it); what it says is trusted only while it is locked.

Two locks use this module: the tuner's (``tuner.lock``, held by :class:`tunebench.store.ExperimentStore`
for a whole tuning session) and an experiment grid's (``grid.lock``, held by the grid process
that runs the experiment: :func:`tunebench.experiments.grid.experiment_lock`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LockHolder", "FolderLock", "lock_holder", "hold"]

#: tries of a refused ``flock`` before giving up: a reader asking :func:`lock_holder` holds a
#: shared lock for an instant, which must not make a process that wants the lock give up
_TRIES = 5
_RETRY_DELAY = 0.02  #: seconds between two tries


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as its holder wrote it (None: not written yet, or unreadable)."""

    pid: int | None
    host: str | None
    since: str | None  #: when it took the lock, ``YYYY-MM-DDTHH:MM:SS+ZZZZ`` (its local time)

    def describe(self) -> str:
        """``"pid 4242 on host-a since 2024-05-01T10:00:00+0200"``, with what is known."""
        parts = [f"pid {self.pid}" if self.pid is not None else "a process"]
        if self.host:
            parts.append(f"on {self.host}")
        if self.since:
            parts.append(f"since {self.since}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``{"pid": ..., "host": ..., "since": ...}``."""
        return {"pid": self.pid, "host": self.host, "since": self.since}


#: seconds at most a process refused the lock waits for the holder's record to name a live
#: process: the holder writes itself into the file just after taking the lock, over the record of
#: a holder that died (killed: nothing emptied the file); on a loaded machine that takes a while
_RECORD_WAIT = 10.0


def _is_dead(holder: LockHolder) -> bool:
    """Whether ``holder`` names a process of this host that no longer exists."""
    if holder.pid is None or holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _current_holder(fd: int) -> LockHolder:
    """The holder's record, read again while it names no process or a dead one (the new holder
    took the lock and is about to write itself; see ``_RECORD_WAIT``)."""
    holder = _read_holder(fd)
    deadline = time.monotonic() + _RECORD_WAIT
    while (holder.pid is None or _is_dead(holder)) and time.monotonic() < deadline:
        time.sleep(_RETRY_DELAY)
        holder = _read_holder(fd)
    return holder


def _read_holder(fd: int) -> LockHolder:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        data = {}
    pid, host, since = data.get("pid"), data.get("host"), data.get("since")
    return LockHolder(pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
                      host if isinstance(host, str) else None, since if isinstance(since, str) else None)


class FolderLock:
    """An exclusive lock on the file ``path`` (created, with its folder, if missing).

    :meth:`acquire` takes it without waiting; :meth:`release` (or the end of the process) lets
    it go. Not reentrant: a second :class:`FolderLock` on the same file, in the same process
    too, is refused while the first holds it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True between a successful :meth:`acquire` and :meth:`release`."""
        return self._fd is not None

    def acquire(self) -> LockHolder | None:
        """Take the lock and write this process into the file; returns None when taken, else
        who holds it (the lock is not taken then). OSError if the file cannot be created."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this FolderLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == _TRIES - 1:
                    holder = _current_holder(fd)
                    os.close(fd)
                    return holder
                time.sleep(_RETRY_DELAY)
        try:
            me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            record = json.dumps(me).encode() + b"\n"
            os.pwrite(fd, record, 0)  # then cut what a longer old record left: never an empty record
            os.ftruncate(fd, len(record))
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return None

    def release(self) -> None:
        """Let the lock go (nothing if it is not held). The file is emptied first, so that it
        never names a process that no longer holds it."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass  # the lock goes with the descriptor all the same
        finally:
            os.close(fd)


def lock_holder(path: str | Path) -> LockHolder | None:
    """Who holds the lock on the file ``path`` now, None if nobody does (or there is no file).

    Used to tell a user who keeps a folder busy. The answer may be out of date as soon as it
    is returned; only :meth:`FolderLock.acquire` decides.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _current_holder(fd)
        return None  # the shared lock goes with the descriptor
    finally:
        os.close(fd)


@contextlib.contextmanager
def hold(path: str | Path) -> Iterator[bool]:
    """Hold the lock on the file ``path`` for the ``with`` block; yields False (and holds
    nothing) if another process holds it."""
    lock = FolderLock(path)
    if lock.acquire() is not None:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
