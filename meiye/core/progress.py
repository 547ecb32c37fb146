"""A small progress bar for management commands (no dependency; quiet when not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())

    def advance(self, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        now = time.monotonic()
        if self.interactive and (now - self._last_draw > 0.1 or self.done == self.total):
            self._last_draw = now
            self._draw(end="")

    def _draw(self, end: str) -> None:
        filled = int(self.width * self.done / self.total)
        bar = "█" * filled + "·" * (self.width - filled)
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s{end}")
        self.stream.flush()

    def finish(self) -> None:
        self.done = self.total
        self._draw(end="\n")
