"""A table of the last N keys seen, in memory reserved once at its creation.

The controller remembers every parcel for as long as it can be on the belt (to drop a repeated
event, to know what was sent before a restart, to find a parcel's record again). Kept in dicts,
that memory grows for the first quarter of an hour of a shift and then stays, and every parcel
allocates and frees a handful of small objects. A line PC runs for months: here the whole table
is allocated when the line starts, so the process's memory is the same at minute one as at hour
ten, and a parcel costs no allocation at all.

Keys are integers (a tracking number, or a PLC boot id and tracking number packed into one).
Each entry holds a time (float) and `fields` integers. Entries are kept in the order they were
last put: putting a key again moves it to the newest place, and once `capacity` entries have been
put since the oldest live one, the oldest is overwritten. A key found in the table can still be
too old for its user: the users compare the entry's time with their own window.

The index is an open-addressing hash table with linear probing, twice the capacity, that holds
positions in the entry ring; a removal closes its gap by moving later entries of the same probe
run back (no tombstones, so lookups never slow down over time).
"""
from array import array
from collections.abc import Iterator

_EMPTY = -1
_GOLDEN = 0x9E3779B97F4A7C15          # Fibonacci hashing: consecutive numbers land far apart
_MASK64 = (1 << 64) - 1


class RecentTable:
    __slots__ = ("capacity", "fields", "_keys", "_times", "_values", "_live", "_index", "_bits", "_mask",
                 "_next", "_count")

    def __init__(self, capacity: int, fields: int = 0):
        if capacity < 1:
            raise ValueError(f"a RecentTable needs a capacity of at least 1, got {capacity}")
        self.capacity, self.fields = capacity, fields
        self._keys = array("q", [0]) * capacity
        self._times = array("d", [0.0]) * capacity
        self._values = array("q", [0]) * (capacity * fields)
        self._live = bytearray(capacity)              # 1 where the ring position holds a live entry
        self._bits = max(2, (2 * capacity - 1).bit_length())
        self._index = array("q", [_EMPTY]) * (1 << self._bits)
        self._mask = (1 << self._bits) - 1
        self._next = 0                                 # the ring position the next put takes
        self._count = 0

    # -- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: int) -> bool:
        return self._find(key)[1] != _EMPTY

    def get(self, key: int) -> tuple[float, tuple[int, ...]] | None:
        """(time, fields) of `key`, or None."""
        position = self._find(key)[1]
        if position == _EMPTY:
            return None
        f = self.fields
        return self._times[position], tuple(self._values[position * f:(position + 1) * f])

    def time_of(self, key: int) -> float | None:
        position = self._find(key)[1]
        return None if position == _EMPTY else self._times[position]

    def keys(self) -> Iterator[int]:
        """Live keys, oldest first."""
        start = self._next
        for i in range(self.capacity):
            position = (start + i) % self.capacity
            if self._live[position]:
                yield self._keys[position]

    # -- writing ---------------------------------------------------------------------------------
    def put(self, key: int, time: float, *values: int) -> None:
        """Remember `key` as the newest entry (moving it there if it was already in)."""
        if len(values) != self.fields:
            raise ValueError(f"this table holds {self.fields} fields per key, got {len(values)}")
        self.pop(key)
        position = self._next
        if self._live[position]:                       # full: the oldest goes
            self._remove_at(position)
        self._next = (position + 1) % self.capacity
        self._keys[position] = key
        self._times[position] = time
        f = self.fields
        if f:
            self._values[position * f:(position + 1) * f] = array("q", values)
        self._live[position] = 1
        self._count += 1
        slot = self._home(key)
        index = self._index
        while index[slot] != _EMPTY:
            slot = (slot + 1) & self._mask
        index[slot] = position

    def pop(self, key: int) -> bool:
        """Forget `key`; whether it was there."""
        slot, position = self._find(key)
        if position == _EMPTY:
            return False
        self._unlink(slot, position)
        return True

    def clear(self) -> None:
        self._index[:] = array("q", [_EMPTY]) * len(self._index)
        self._live[:] = bytes(self.capacity)
        self._next = self._count = 0

    # -- the index ---------------------------------------------------------------------------------
    def _home(self, key: int) -> int:
        return ((key * _GOLDEN) & _MASK64) >> (64 - self._bits)

    def _find(self, key: int) -> tuple[int, int]:
        """(index slot, ring position) of `key`, or (slot where the probe ended, _EMPTY)."""
        index, keys, mask = self._index, self._keys, self._mask
        slot = self._home(key)
        while True:
            position = index[slot]
            if position == _EMPTY or keys[position] == key:
                return slot, position
            slot = (slot + 1) & mask

    def _remove_at(self, position: int) -> None:
        slot = self._find(self._keys[position])[0]
        self._unlink(slot, position)

    def _unlink(self, slot: int, position: int) -> None:
        self._live[position] = 0
        self._count -= 1
        index, keys, mask = self._index, self._keys, self._mask
        # Backward-shift deletion: move each later entry of the probe run into the gap when its
        # home slot does not lie (cyclically) between the gap and where it sits.
        gap = slot
        slot = (slot + 1) & mask
        while index[slot] != _EMPTY:
            home = self._home(keys[index[slot]])
            if (slot - home) & mask >= (slot - gap) & mask:
                index[gap] = index[slot]
                gap = slot
            slot = (slot + 1) & mask
        index[gap] = _EMPTY
