"""Cost of ``from tunebench import report`` (what every training script pays at start).

Runs fresh interpreters, alternating ``python -c pass`` (the bare interpreter) and
``python -c "from tunebench import report"``, and prints the medians, their difference
(tunebench's own cost; target <= 50 ms) and the ratio to Syne Tune's 0.55 s for
``from syne_tune import Reporter``.

    python benchmarks/import_time.py [--runs 10] [--python PATH] [--detail]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

TARGET_MS = 50.0
SYNE_TUNE_MS = 550.0
STATEMENT = "from tunebench import report"


#: the children's environment: bytecode caching on (as in an installed package), unless --no-pyc
_ENV = dict(os.environ)


def time_command(python: str, code: str) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds: user + system) of one fresh ``python -c code``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([python, "-c", code], env=_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"python -c {code!r} failed with exit code {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(python: str, runs: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(bare interpreter times, import times), alternated so that drifts in load hit both."""
    time_command(python, "pass")  # warm the file cache
    time_command(python, STATEMENT)
    bare, imported = [], []
    for _ in range(runs):
        bare.append(time_command(python, "pass"))
        imported.append(time_command(python, STATEMENT))
    return bare, imported


def importtime_rows(python: str) -> list[tuple[int, str]]:
    """(cumulative µs, module) for each module the statement imports, per ``-X importtime``."""
    err = subprocess.run([python, "-X", "importtime", "-c", STATEMENT], capture_output=True,
                         text=True, check=True, env=_ENV).stderr
    rows = []
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return rows


def inprocess_import_ms(python: str, runs: int) -> float:
    """Least in-interpreter cost of importing the ``tunebench`` package over ``runs`` runs
    (``-X importtime``; the steadiest figure on a loaded machine)."""
    best = float("inf")
    for _ in range(runs):
        for us, name in importtime_rows(python):
            if name.strip() == "tunebench":
                best = min(best, us / 1000.0)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--detail", action="store_true", help="also list the costliest imports")
    parser.add_argument("--no-pyc", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE if set (tunebench then compiles from "
                             "source in every interpreter, as in a read-only checkout)")
    args = parser.parse_args(argv)
    if not args.no_pyc:
        _ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up run writes tunebench's .pyc
    bare, imported = measure(args.python, args.runs)
    ms = 1000.0

    def med(values: list[tuple[float, float]], i: int) -> float:
        return statistics.median(v[i] for v in values) * ms

    own_wall = statistics.median(i[0] - b[0] for b, i in zip(bare, imported, strict=True)) * ms
    own_cpu = med(imported, 1) - med(bare, 1)
    pyc = "no .pyc cache" if "PYTHONDONTWRITEBYTECODE" in _ENV else ".pyc cached"
    print(f"== {STATEMENT!r}, medians of {args.runs} fresh interpreters ({args.python}, {pyc})")
    print(f"                        {'wall':>9} {'cpu':>9}")
    print(f"python -c pass          {med(bare, 0):6.1f} ms {med(bare, 1):6.1f} ms")
    print(f"with the import         {med(imported, 0):6.1f} ms {med(imported, 1):6.1f} ms")
    print(f"import cost             {own_wall:6.1f} ms {own_cpu:6.1f} ms   (target <= {TARGET_MS:.0f} ms "
          f"wall: {'OK' if own_wall <= TARGET_MS else 'MISSED'})")
    print(f"in-process (-X importtime, best of {args.runs}): {inprocess_import_ms(args.python, args.runs):.1f} ms")
    absolute = med(imported, 0)
    print(f"vs Syne Tune's {SYNE_TUNE_MS:.0f} ms   {SYNE_TUNE_MS / absolute:6.1f} x faster (absolute wall), "
          f"{SYNE_TUNE_MS / max(own_wall, 1e-9):.0f} x (import cost only)")
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"note: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: "
              "wall times are inflated; the cpu column is the steadier figure")
    if args.detail:
        print("costliest imports (cumulative, µs):")
        for us, name in sorted(importtime_rows(args.python), reverse=True)[:8]:
            print(f"  {us:8d}  {name}")


if __name__ == "__main__":
    main()
