"""Running things from tests: the `pitap` command as a subprocess (finished or still running),
and waiting for a condition with a deadline. Not a test module itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

PITAP = (sys.executable, "-m", "firmware")


def _env(extra: dict[str, str]) -> dict[str, str]:
    return os.environ | {"PYTHONUNBUFFERED": "1"} | extra


def run_pitap(*args: str, cwd: Path | None = None, timeout: float = 240,
              **env: str) -> subprocess.CompletedProcess[str]:
    """`pitap ARGS` to the end: exit code, stdout and stderr as text."""
    return subprocess.run([*PITAP, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=_env(env))


def start_pitap(*args: str, cwd: Path | None = None, stdin: int | None = None,
                **env: str) -> subprocess.Popen[str]:
    """`pitap ARGS` left running, stdout and stderr as text pipes (standard input: `stdin`, a
    file descriptor or subprocess.PIPE / DEVNULL; default inherited); the caller ends it."""
    return subprocess.Popen([*PITAP, *args], cwd=cwd, text=True, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(env))


def wait_until(check: Callable[[], object], seconds: float = 10.0, every: float = 0.1) -> bool:
    """Ask `check()` every `every` seconds: True once it is true, False when `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False
