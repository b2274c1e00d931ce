"""Per-parcel time budget on the monotonic clock."""
from __future__ import annotations

import time


class Deadline:
    def __init__(self, budget_ms: float):
        self.start_s = time.perf_counter()
        self.budget_ms = float(budget_ms)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.start_s) * 1000.0

    def remaining_ms(self) -> float:
        return self.budget_ms - self.elapsed_ms()

    def expired(self) -> bool:
        return self.remaining_ms() <= 0.0
