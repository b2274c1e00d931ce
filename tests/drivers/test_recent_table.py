"""drivers.recent_table against an OrderedDict that does the same job the obvious way."""
import collections
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from drivers import recent_table
from drivers.recent_table import RecentTable

# Few distinct keys, colliding homes in a small index: probe runs, wrap-around and gap closing.
KEYS = st.one_of(st.integers(0, 40), st.integers(-2**40, 2**47))


class AgainstOrderedDict(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.capacity = 5
        self.table = RecentTable(self.capacity, fields=2)
        self.model: collections.OrderedDict = collections.OrderedDict()
        # the model's notion of capacity: entries put since the oldest live one, holes included
        self.ring: collections.deque = collections.deque()

    @rule(key=KEYS, time=st.floats(0, 1e6), a=st.integers(-2**62, 2**62), b=st.integers(0, 9))
    def put(self, key, time, a, b):
        self.table.put(key, time, a, b)
        if key in self.model:
            del self.model[key]
            self.ring = collections.deque(None if k == key else k for k in self.ring)
        if len(self.ring) == self.capacity:
            oldest = self.ring.popleft()
            if oldest is not None:
                del self.model[oldest]
        self.ring.append(key)
        self.model[key] = (time, (a, b))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def pop_present(self, data):
        key = data.draw(st.sampled_from(list(self.model)))
        assert self.table.pop(key)
        del self.model[key]
        self.ring = collections.deque(None if k == key else k for k in self.ring)

    @rule(key=KEYS)
    def pop_any(self, key):
        assert self.table.pop(key) == (key in self.model)
        if key in self.model:
            del self.model[key]
            self.ring = collections.deque(None if k == key else k for k in self.ring)

    @rule()
    def clear(self):
        self.table.clear()
        self.model.clear()
        self.ring.clear()

    @invariant()
    def same(self):
        assert len(self.table) == len(self.model)
        assert list(self.table.keys()) == list(self.model)
        for key, value in self.model.items():
            assert self.table.get(key) == value
            assert key in self.table


TestAgainstOrderedDict = AgainstOrderedDict.TestCase
TestAgainstOrderedDict.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)


@given(st.lists(st.integers(0, 2**32), min_size=1, max_size=300))
@settings(max_examples=100, deadline=None)
def test_absent_keys_are_not_found_after_any_history(keys):
    table = RecentTable(64)
    for i, key in enumerate(keys):
        table.put(key, float(i))
    kept = set(list(dict.fromkeys(reversed(keys)))[:64])
    assert set(table.keys()) <= kept
    for key in set(keys) - set(table.keys()):
        assert table.get(key) is None


def test_a_full_day_of_parcels_allocates_nothing_after_creation():
    table = RecentTable(8192, fields=3)
    for tracking in range(1, 20_000):                        # warm the interpreter's own caches
        table.put(tracking, tracking * 0.09, tracking, 7, 1)
    # Only what the table's own code holds counts (other threads of the test process allocate too).
    mine = [tracemalloc.Filter(True, recent_table.__file__)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(mine)
        for tracking in range(20_000, 400_000):
            table.put(tracking, tracking * 0.09, tracking, 7, 1)
            table.get(tracking - 5000)
        after = tracemalloc.take_snapshot().filter_traces(mine)
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 4096, f"{grown} bytes held by the table's code after 380,000 puts into a full table"
    assert len(table) == 8192


def test_wrong_number_of_fields_is_refused():
    table = RecentTable(4, fields=2)
    with pytest.raises(ValueError, match="2 fields per key, got 1"):
        table.put(1, 0.0, 5)
