"""A one-line progress bar on stderr for long steps, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

MiB = 1024 * 1024


class Progress:
    """`with Progress("writing", total) as bar: bar.advance(n)`; silent unless a tty."""

    def __init__(
        self, label: str, total: int, stream: TextIO | None = None, unit: str = "MiB"
    ) -> None:
        self.label = label
        self.unit = unit  # "MiB": total and advance() count bytes; "": they count items
        self.total = max(total, 0)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._started = time.monotonic()
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._draw(force=True)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def advance(self, n: int) -> None:
        self.done += n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        width = 30
        frac = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(frac * width)
        bar = f"\r{self.label:<14} [{'#' * filled}{'.' * (width - filled)}] {frac:4.0%} "
        if self.unit == "MiB":
            rate = self.done / MiB / max(now - self._started, 1e-6)
            bar += f"{self.done / MiB:8.1f} MiB {rate:6.1f} MiB/s"
        else:
            bar += f"{self.done}/{self.total} {self.unit}"
        self.stream.write(bar)
        self.stream.flush()
