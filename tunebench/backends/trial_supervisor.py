"""The supervisor of one trial run (L2): a small process between the local backend and the
training script, run as a file (``python -I -S trial_supervisor.py ...``, standard library only,
so it starts in a few milliseconds and never imports tunebench).

Why: a training script may start processes of its own (a data loader, a wrapper, a grandchild
that calls ``setsid``). They must all end with the trial, also when the tuner is SIGKILLed.
cgroups are rarely writable for a user, so the supervisor is a *child subreaper*
(``PR_SET_CHILD_SUBREAPER``, Linux): every orphaned descendant of the script is re-parented to
it instead of to init, so it can always find the whole tree (through ``/proc``) and kill it.

What it does:

* launches the script (``fork`` + ``exec`` from a single-threaded process: nothing fork-unsafe
  runs in the tuner between fork and exec) in a process group of its own (its id: the script's
  pid) and writes ``pid N`` to its status descriptor; the backend signals that group itself,
  at once (a script must not report on after the tuner asked it to end);
* on SIGTERM: sends SIGTERM to every descendant outside that group (a grandchild that called
  ``setsid``, say);
* on SIGUSR1 (sent by the backend when the grace period is over) and when the tuner dies
  (``PR_SET_PDEATHSIG`` = SIGUSR1): SIGKILLs the script's group, then every other descendant;
* when the script exits: SIGKILLs whatever descendant is left, reaps them all, writes
  ``exit CODE`` (negative: killed by that signal) to its status descriptor and exits; so once
  the supervisor is gone, the whole tree is gone;
* with a log limit, copies the script's stdout and stderr to the log files (its own stdout and
  stderr, opened read-write in append mode by the backend), keeping the first half of the
  limit and the last half, with one marker line saying how many bytes were dropped between.

Command line: ``STATUS_FD PARENT_PID KILL_ON_PARENT_DEATH(0|1) LOG_LIMIT_BYTES(0: none) ARGV...``.
"""

from __future__ import annotations

# the C module under ``signal``: ``signal`` imports enum, which would double this process's start-up
import _signal as signal  # type: ignore[import-not-found,unused-ignore]  # no stub in typeshed
import os
import select
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

SIGKILL_ALL: int = signal.SIGUSR1  #: the signal that asks the supervisor to SIGKILL the whole tree
MARKER_PREFIX = b"\n[tunebench: "
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_CHUNK = 1 << 16


class CappedLog:
    """Appends to the log file ``fd`` keeping at most ``limit`` bytes: the head (first half) and
    the tail (last half), with a marker line between saying how much was dropped. A file left
    by an earlier run of the trial counts towards the limit (its head stays the head)."""

    def __init__(self, fd: int, limit: int) -> None:
        self.fd = fd
        self.head = limit // 2
        self.tail_cap = limit - self.head
        self.dropped = 0
        self.tail = bytearray()
        self.pending = 0  # bytes appended to the file since it was last compacted
        size = os.fstat(fd).st_size
        self.room = max(0, self.head - size)
        if size > self.head:
            rest = os.pread(fd, size - self.head, self.head)
            if rest.startswith(MARKER_PREFIX):
                end = rest.find(b"\n", 1)
                words = rest[len(MARKER_PREFIX):end].split()
                if end > 0 and words and words[0].isdigit():
                    self.dropped = int(words[0])
                    rest = rest[end + 1:]
            self.tail = bytearray(rest)
            self.pending = len(rest)
            self._trim()

    def _trim(self) -> None:
        excess = len(self.tail) - self.tail_cap
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess
        if self.dropped and self.pending > self.tail_cap // 2:
            self.compact()

    def _write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def write(self, data: bytes) -> None:
        if self.room:
            now = data[: self.room]
            self._write(now)
            self.room -= len(now)
            data = data[len(now):]
        if data:
            self._write(data)
            self.tail += data
            self.pending += len(data)
            self._trim()

    def compact(self) -> None:
        """Rewrite the file as head + marker + tail."""
        os.ftruncate(self.fd, self.head)
        self._write(MARKER_PREFIX + b"%d bytes dropped here: this log keeps the first and last %d bytes "
                    b"(--trial-log-limit)]\n" % (self.dropped, self.tail_cap) + self.tail)
        self.pending = 0

    def close(self) -> None:
        if self.dropped and self.pending:
            self.compact()


class Supervisor:
    def __init__(self, status_fd: int, parent: int, kill_on_parent_death: bool, log_limit: int,
                 argv: list[str], run_child: Callable[[], int] | None = None) -> None:
        self.status_fd = status_fd
        self.argv = argv
        #: warm start (:mod:`warm_server`): what the script's process runs instead of ``exec argv``;
        #: returns its exit code
        self.run_child = run_child
        self.log_limit = log_limit
        self.child = 0
        self.status: int | None = None  # the script's exit code (negative: killed by that signal)
        os.set_inheritable(status_fd, False)
        prctl = _prctl()
        if prctl is not None:
            prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            if kill_on_parent_death:
                prctl(_PR_SET_PDEATHSIG, SIGKILL_ALL, 0, 0, 0)
        self.parent_gone = kill_on_parent_death and os.getppid() != parent

    # -- the process tree ---------------------------------------------------------------------

    def descendants(self, outside_group: int = 0) -> list[int]:
        """Live (not zombie) descendants, found through /proc (falls back to the script alone);
        ``outside_group``: only those not in that process group."""
        me = os.getpid()
        try:
            names = os.listdir("/proc")
        except OSError:
            return [self.child] if self.child and self.status is None else []
        children: dict[int, list[int]] = {}
        zombie: set[int] = set()
        for name in names:
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2:].split()
            if len(fields) < 3:
                continue
            pid = int(name)
            children.setdefault(int(fields[1]), []).append(pid)
            if fields[0] in (b"Z", b"X") or (outside_group and int(fields[2]) == outside_group):
                zombie.add(pid)  # (or left out)
        found: list[int] = []
        todo = [me]
        while todo:
            for pid in children.get(todo.pop(), ()):
                todo.append(pid)
                if pid not in zombie:
                    found.append(pid)
        return found

    def terminate(self) -> None:
        """SIGTERM to the descendants outside the script's group (the backend signals that one)."""
        for pid in self.descendants(outside_group=self.child):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    def kill_group(self) -> None:
        if self.child and self.status is None:
            try:
                os.killpg(self.child, signal.SIGKILL)
            except OSError:
                pass

    def kill_everything(self) -> None:
        """SIGKILL the script's group at once, then whatever else descends from here."""
        self.kill_group()
        self.kill_all()

    def reap(self) -> bool:
        """Reap ended children (noting the script's status); whether any child remains."""
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True
            if pid == self.child:
                self.status = os.waitstatus_to_exitcode(wait_status)

    def kill_all(self) -> None:
        """SIGKILL every descendant until none is left (new ones forked meanwhile included)."""
        while True:
            alive = self.descendants()
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if not self.reap() and not alive:
                return
            time.sleep(0.002)

    # -- running ------------------------------------------------------------------------------

    def run(self) -> int:
        if self.parent_gone:  # the tuner died before PR_SET_PDEATHSIG took effect
            return 1
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        # Python handlers (not SIG_IGN): an exec resets them to the default in the script
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, lambda *_: None)  # the tuner's Ctrl-C is the tuner's
        signal.signal(signal.SIGTERM, lambda *_: self.terminate())
        signal.signal(SIGKILL_ALL, lambda *_: self.kill_everything())
        pipes: dict[int, CappedLog] = {}
        child_fds: list[tuple[int, int]] = []
        if self.log_limit > 0:
            for target in (1, 2):
                r, w = os.pipe()
                pipes[r] = CappedLog(target, self.log_limit)
                child_fds.append((w, target))
        self.child = os.fork()
        if self.child == 0:  # the script's process: exec at once
            try:
                os.setpgid(0, 0)
                for w, target in child_fds:
                    os.dup2(w, target)
                if self.run_child is not None:
                    self._as_if_exec([self.status_fd, wake_r, wake_w, *pipes, *(w for w, _ in child_fds)])
                    os._exit(self.run_child())
                os.execvp(self.argv[0], self.argv)
            except OSError as err:
                os.write(2, f"tunebench: cannot run {' '.join(self.argv)}: {err}\n".encode())
            os._exit(127)
        try:
            os.setpgid(self.child, self.child)  # done before the backend learns the pid
        except OSError:
            pass  # the child has exec'd already (so it did it itself)
        for w, _ in child_fds:
            os.close(w)
        os.write(self.status_fd, b"pid %d\n" % self.child)
        while self.status is None:
            try:
                ready, _, _ = select.select([wake_r, *pipes], [], [])
            except InterruptedError:
                continue
            for fd in ready:
                if fd == wake_r:
                    try:
                        os.read(wake_r, 4096)
                    except BlockingIOError:
                        pass
                else:
                    self._copy(fd, pipes)
            self.reap()
        self.kill_all()  # the script ended: nothing it started outlives it
        for fd in list(pipes):  # every writer is gone: read up to the end
            while self._copy(fd, pipes):
                pass
        assert self.status is not None
        os.write(self.status_fd, b"exit %d\n" % self.status)
        return 0

    @staticmethod
    def _as_if_exec(fds: list[int]) -> None:
        """In a forked script process that will not ``exec``: what an exec would do to this
        process's state, so the script starts as after one: the supervisor's descriptors closed
        (they are close-on-exec) and its signal handlers back to the defaults."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, SIGKILL_ALL):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    @staticmethod
    def _copy(fd: int, pipes: dict[int, CappedLog]) -> bool:
        """Copy what the pipe ``fd`` holds to its log; False (and closed) at its end."""
        data = os.read(fd, _CHUNK)
        if data:
            pipes[fd].write(data)
            return True
        pipes.pop(fd).close()
        os.close(fd)
        return False


def _prctl() -> Callable[..., int] | None:
    """The C library's ``prctl`` (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # deferred: only on Linux

        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return function
    except (OSError, AttributeError, ImportError):
        return None


def main(argv: list[str]) -> int:
    status_fd, parent, kill_on_parent_death, log_limit = argv[:4]
    return Supervisor(int(status_fd), int(parent), kill_on_parent_death == "1", int(log_limit), argv[4:]).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
