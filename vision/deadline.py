"""Per-parcel time budget on the monotonic clock, and the rule for stages that cannot be stopped.

A decode, a resize, a zxing scan or a text-model run cannot be interrupted once started: a read
keeps its budget only if each such stage is started when its worst case still fits. `fits(ms)`
says so for a stage estimated at `ms` on an unloaded core (vision/stage_cost.py), scaled by how
much slower than estimated this read's stages have run so far (`pace`): a machine busy with other
work stretches every stage alike, and the estimate is only a floor there.
"""
from __future__ import annotations

import time

# A pace is taken from stages estimated at this much in all (ms), not from one short stage that a
# single context switch can stretch tenfold.
PACE_MIN_ESTIMATED_MS = 3.0
MAX_PACE = 8.0


class OverBudget(Exception):
    """A stage that cannot be stopped does not fit in the budget left; the message says which."""


class Deadline:
    def __init__(self, budget_ms: float):
        self.start_s = time.perf_counter()
        self.budget_ms = float(budget_ms)
        self._estimated_ms = 0.0
        self._taken_ms = 0.0
        self.skipped: list[str] = []     # stages not started for want of time, for the read's notes

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.start_s) * 1000.0

    def remaining_ms(self) -> float:
        return self.budget_ms - self.elapsed_ms()

    def expired(self) -> bool:
        return self.remaining_ms() <= 0.0

    @property
    def pace(self) -> float:
        """How many times its estimate a stage of this read has taken, overall (at least 1)."""
        if self._estimated_ms < PACE_MIN_ESTIMATED_MS:
            return 1.0
        return min(MAX_PACE, max(1.0, self._taken_ms / self._estimated_ms))

    def fits(self, estimate_ms: float) -> bool:
        """Whether a stage that cannot be stopped, estimated at `estimate_ms`, ends within budget."""
        return estimate_ms * self.pace <= self.remaining_ms()

    def skip(self, note: str) -> None:
        """Name a stage not started for want of time (each note once)."""
        if note not in self.skipped:
            self.skipped.append(note)

    def timed(self, estimate_ms: float) -> "_Timed":
        """`with deadline.timed(est): stage()` records how long the stage took against `est`."""
        return _Timed(self, estimate_ms)


class _Timed:
    def __init__(self, deadline: Deadline, estimate_ms: float):
        self.deadline, self.estimate_ms = deadline, estimate_ms

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.deadline._estimated_ms += self.estimate_ms
        self.deadline._taken_ms += (time.perf_counter() - self.t0) * 1000.0
        return False
