"""Start-up time of the `pitap` command, side by side with a bare Python start.

Runs each command line many times in turn (interleaved, so a neighbour's load hits all of them
alike) and prints, for `pitap --help`, `pitap pay --help` and `pitap journal --help`, the median
wall time and CPU time (user + system of the child) and their ratios to `python -c pass` with the
same interpreter. The ratios are the figures to compare between machines (the CPU one moves
least on a shared machine); the goal is at most 5x a bare start. Prints figures, asserts
nothing.

    python bench/cli_start.py [--runs 30]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The console script next to this interpreter, as a user runs it; else the same thing by hand.
_SCRIPT = shutil.which("pitap", path=str(Path(sys.executable).parent))
PITAP = ([_SCRIPT] if _SCRIPT else
         [sys.executable, "-c", "import sys; from firmware.cli import main; sys.exit(main())"])
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "pitap --help": [*PITAP, "--help"],
    "pitap pay --help": [*PITAP, "pay", "--help"],
    "pitap journal --help": [*PITAP, "journal", "--help"],
}
GOAL = 5.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    cpu, started = _cpu(), time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    return time.perf_counter() - started, _cpu() - cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=30, help="runs of each command (default 30)")
    args = p.parse_args(argv)
    for cmd in COMMANDS.values():  # warm the page cache and the bytecode caches
        once(cmd)
    wall: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            w, c = once(cmd)
            wall[name].append(w)
            cpu[name].append(c)
    bare_wall = statistics.median(wall["python -c pass"])
    bare_cpu = statistics.median(cpu["python -c pass"])
    print(f"start-up, median of {args.runs} runs, Python {sys.version.split()[0]} "
          f"(goal: at most {GOAL:.0f}x a bare start)")
    print(f"  {'':<22} {'wall':>9} {'ratio':>6} {'CPU':>9} {'ratio':>6}")
    for name in COMMANDS:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"  {name:<22} {w * 1000:6.1f} ms {w / bare_wall:5.1f}x "
              f"{c * 1000:6.1f} ms {c / bare_cpu:5.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
