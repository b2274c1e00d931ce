"""The result of decide_batch: parallel numpy arrays, one entry per parcel."""
import numpy as np

from .decision import Decision, Reason


class BatchResult:
    """chute (int16), reason (uint8), courier and destination (1-based indexes into
    plan.couriers / plan.destinations, 0 = none); decision(i) gives parcel i's Decision."""

    def __init__(self, n, plan):
        self.chute = np.zeros(n, np.int16)
        self.reason = np.zeros(n, np.uint8)
        self.courier = np.zeros(n, np.uint8)
        self.destination = np.zeros(n, np.uint16)
        self._couriers = [None] + list(plan.couriers)
        self._destinations = [None] + list(plan.destinations)

    def __len__(self):
        return len(self.chute)

    def decision(self, i):
        return Decision(int(self.chute[i]), Reason(int(self.reason[i])),
                        self._couriers[self.courier[i]], self._destinations[self.destination[i]])

    def decisions(self):
        return [self.decision(i) for i in range(len(self))]
