"""Open-addressing table from 64-bit codes to small integers, stored in two flat numpy arrays.

Fibonacci hashing (multiply, keep the top bits) and linear probing; key 0 marks an empty
slot. At most 70 % full, so a miss stops after a couple of slots. Built vectorised with
numpy (no Python loop per record, and numpy drops the GIL in its loops) so that a table of
millions of records builds in seconds beside a running line.
"""
import numpy as np

MULTIPLIER = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
MAX_LOAD = 0.7


class CodeTable:
    __slots__ = ("keys", "values", "shift", "mask", "count")

    def __init__(self, keys, values, shift, count):
        self.keys = keys
        self.values = values
        self.shift = shift
        self.mask = len(keys) - 1
        self.count = count

    @property
    def nbytes(self):
        return self.keys.nbytes + self.values.nbytes

    def get(self, key):
        """Pure-Python lookup: the value stored for `key`, 0 when absent."""
        keys = self.keys
        slot = (key * MULTIPLIER & MASK64) >> self.shift
        while True:
            found = int(keys[slot])
            if found == key:
                return int(self.values[slot])
            if found == 0:
                return 0
            slot = (slot + 1) & self.mask


def _capacity(n):
    capacity = 16
    while capacity * MAX_LOAD < n:
        capacity *= 2
    return capacity


def build(keys, values, value_dtype=np.uint16):
    """Table of unique nonzero int64 `keys` -> `values`."""
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=value_dtype)
    capacity = _capacity(len(keys))
    shift = 64 - (capacity.bit_length() - 1)
    table_keys = np.zeros(capacity, dtype=np.int64)
    table_values = np.zeros(capacity, dtype=value_dtype)
    slots = ((keys.view(np.uint64) * np.uint64(MULTIPLIER)) >> np.uint64(shift)).astype(np.int64)
    pending = np.arange(len(keys), dtype=np.int64)
    mask = capacity - 1
    while pending.size:
        wanted = slots[pending]
        free = np.flatnonzero(table_keys[wanted] == 0)
        taken_slots, first = np.unique(wanted[free], return_index=True)
        winners = pending[free[first]]
        table_keys[taken_slots] = keys[winners]
        table_values[taken_slots] = values[winners]
        placed = np.zeros(pending.size, dtype=bool)
        placed[free[first]] = True
        pending = pending[~placed]
        slots[pending] = (slots[pending] + 1) & mask
    return CodeTable(table_keys, table_values, shift, len(keys))
