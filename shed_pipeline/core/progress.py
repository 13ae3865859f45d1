"""Progress lines for long steps: no step that can take more than ~20 s runs silently.

    Progress(493, "probe features", log).advance(8)   # per batch
    -> "probe features: 256/493 rows (12.8 rows/s, ~19s left)"   at most every `every_s` seconds,
    -> "probe features: 493/493 rows (12.3 rows/s, done in 40s)"   and always once the total is reached

The clock is injectable, so tests check exact lines without sleeping. `throttled` bounds a whole
stream of lines (e.g. everything one utility logs over thousands of evaluations) to one per interval.
"""

from __future__ import annotations

import time
from typing import Callable

Log = Callable[[str], None]
Clock = Callable[[], float]
EVERY_S = 10.0


def silent(_msg: str) -> None:
    """The default log: says nothing."""


def format_rate(rate: float) -> str:
    """Three significant figures at most: 1234, 12.3, 2.5, 0.042."""
    if rate >= 100:
        return f"{rate:.0f}"
    if rate >= 1:
        return f"{rate:.1f}"
    return f"{rate:.2g}"


def format_seconds(seconds: float) -> str:
    """19s, 2m05s, 1h03m."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Counts work done out of `total` (None: unknown) and logs `what: done/total unit (rate, time
    left)` at most every `every_s` seconds, and always when `done` reaches `total` (then with the
    time taken). The rate is the average since the Progress was made."""

    def __init__(
        self,
        total: int | None,
        what: str,
        log: Log = silent,
        *,
        unit: str = "rows",
        every_s: float = EVERY_S,
        clock: Clock = time.monotonic,
    ):
        self.total, self.what, self.log, self.unit, self.every_s, self.clock = total, what, log, unit, every_s, clock
        self.done = 0
        self.start = self._last = clock()

    def line(self, now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.start
        rate = self.done / elapsed if elapsed > 0 else None
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        detail = [f"{format_rate(rate)} {self.unit}/s"] if rate is not None else []
        if self.total is not None and self.done >= self.total:
            detail.append(f"done in {format_seconds(elapsed)}")
        elif self.total is not None and rate:
            detail.append(f"~{format_seconds((self.total - self.done) / rate)} left")
        return f"{self.what}: {count} {self.unit}" + (f" ({', '.join(detail)})" if detail else "")

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if (self.total is not None and self.done >= self.total) or now - self._last >= self.every_s:
            self._last = now
            self.log(self.line(now))

    def finish(self) -> None:
        """The closing line of work that may end before `total` (an upper bound, e.g. a truncated
        estimator), with the time taken; says nothing if the total was reached (already said)."""
        if self.total is not None and self.done >= self.total:
            return
        self.total = self.done
        self.log(self.line())


def throttled(log: Log, every_s: float = EVERY_S, clock: Clock = time.monotonic) -> Log:
    """A log that passes a message on only when `every_s` seconds have gone by since the last one
    it passed (the first always passes), and drops the others."""
    last: list[float | None] = [None]

    def out(msg: str) -> None:
        now = clock()
        if last[0] is None or now - last[0] >= every_s:
            last[0] = now
            log(msg)

    return out
