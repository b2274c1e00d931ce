"""Open-addressing table from 64-bit codes to small integers, stored in two flat numpy arrays.

Fibonacci hashing (multiply, keep the top bits) and linear probing; key 0 marks an empty
slot. At most 70 % full, so a miss stops after a couple of slots. When a key comes twice,
the later value wins and the table counts how many records changed a value.

The compiled core fills big tables in one C loop with the GIL released (a plan builds in
a thread beside the running line); the numpy fallback gives the same lookups.
"""
import numpy as np

from . import mapped_arrays

MULTIPLIER = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
MAX_LOAD = 0.7


class CodeTable:
    __slots__ = ("keys", "values", "shift", "mask", "count", "conflicts", "first_conflict")

    def __init__(self, keys, values, shift, count, conflicts=0, first_conflict=-1):
        self.keys = keys
        self.values = values
        self.shift = shift
        self.mask = len(keys) - 1
        self.count = count                    # distinct keys
        self.conflicts = conflicts            # records that replaced another value
        self.first_conflict = first_conflict  # input position of the first such record, -1 if none

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


def capacity_for(n):
    capacity = 16
    while capacity * MAX_LOAD < n:
        capacity *= 2
    return capacity


def build(keys, values, value_dtype=np.uint16, fill=None):
    """Table of nonzero int64 `keys` -> `values`, later duplicates winning.

    `fill` is the compiled filler (fastpath._core.fill_table) or None for numpy.
    """
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=value_dtype)
    capacity = capacity_for(len(keys))
    shift = 64 - (capacity.bit_length() - 1)
    table_keys = mapped_arrays.zeros(capacity, np.int64)
    table_values = mapped_arrays.zeros(capacity, value_dtype)
    if fill is not None and value_dtype == np.uint16:
        count, conflicts, first = fill(keys, values, table_keys, table_values, shift)
        return CodeTable(table_keys, table_values, shift, count, conflicts, first)
    keys, values, conflicts, first = _last_wins(keys, values)
    _fill_vectorised(keys, values, table_keys, table_values, shift)
    return CodeTable(table_keys, table_values, shift, len(keys), conflicts, first)


def _last_wins(keys, values):
    if len(keys) < 2:
        return keys, values, 0, -1
    order = np.argsort(keys, kind="stable")
    sorted_keys, sorted_values = keys[order], values[order]
    repeated = sorted_keys[1:] == sorted_keys[:-1]
    changed = np.flatnonzero(repeated & (sorted_values[1:] != sorted_values[:-1]))
    first = int(order[changed + 1].min()) if len(changed) else -1
    last = np.ones(len(keys), dtype=bool)
    last[:-1] = ~repeated
    keep = order[last]
    return keys[keep], values[keep], len(changed), first


def _fill_vectorised(keys, values, table_keys, table_values, shift):
    """Linear probing for all keys at once: each round, every key still waiting tries its
    next slot, and one key wins each free slot."""
    mask = len(table_keys) - 1
    slots = ((keys.view(np.uint64) * np.uint64(MULTIPLIER)) >> np.uint64(shift)).astype(np.int64)
    pending = np.arange(len(keys), dtype=np.int64)
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
