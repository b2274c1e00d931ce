"""Exactly-once ring reading on its own: every event once or counted as lost, whatever the snapshots."""
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import regmap as rm
from drivers.link import LinkStatus
from drivers.rings import RingReader, valid_confirmation, valid_scan

N = rm.RING_SLOTS


class PlcRing:
    """A correct PLC's scan ring: slot first, then the sequence number; tracking survives restarts."""

    def __init__(self):
        self.boot, self.seq, self.tracking = 1, 0, 0
        self.slots = [(0, 0, 0)] * N
        self.this_boot: list[int] = []               # tracking numbers by seq - 1
        self.unread_at_restart: list[int] = []

    def event(self) -> int:
        self.seq += 1
        self.tracking += 1
        self.slots[(self.seq - 1) % N] = (self.seq, self.tracking, 0)
        self.this_boot.append(self.tracking)
        return self.tracking

    def restart(self, last_read_seq: int) -> None:
        # Events the reader had not seen die with the PLC: they are the PLC's to report as lost.
        self.unread_at_restart += self.this_boot[last_read_seq:]
        self.boot, self.seq, self.this_boot = self.boot + 1, 0, []
        self.slots = [(0, 0, 0)] * N

    def snapshot(self):
        return self.boot, self.seq, list(self.slots)


def reader() -> RingReader:
    return RingReader("scan", LinkStatus(), valid_scan)


operations = st.lists(st.one_of(
    st.tuples(st.just("events"), st.integers(0, 40)),
    st.tuples(st.just("read"), st.just(0)),
    st.tuples(st.just("restart"), st.just(0)),
), max_size=60)


@settings(max_examples=100, deadline=None)
@given(operations)
def test_a_correct_plc_read_at_any_pace_loses_only_what_it_counts(ops):
    plc, r = PlcRing(), reader()
    r.start(*plc.snapshot()[:2], acked=0)
    generated, delivered, now_s = [], [], 0.0
    for op, n in ops:
        now_s += 1.0
        if op == "events":
            generated += [plc.event() for _ in range(n)]
        elif op == "read":
            delivered += [slot[1] for slot in r.take(*plc.snapshot(), now_s)]
        else:
            plc.restart(r.last if r.boot == plc.boot else 0)
    delivered += [slot[1] for slot in r.take(*plc.snapshot(), now_s + 1)]
    assert delivered == sorted(set(delivered)), "each event once, in order"
    lost = r.status.anomalies.get("scan_overrun", 0)
    assert len(delivered) + lost + len(set(plc.unread_at_restart) - set(delivered)) == len(generated)
    assert set(r.status.anomalies) <= {"scan_overrun"}


garbage_words = st.integers(0, 0xFFFFFFFF)
garbage_snapshot = st.tuples(st.integers(0, 0xFFFF), garbage_words,
                             st.lists(st.tuples(garbage_words, garbage_words, garbage_words), min_size=N, max_size=N))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just("events"), st.integers(0, 10)), st.tuples(st.just("read"), st.none()),
                          st.tuples(st.just("garbage"), garbage_snapshot)), max_size=60))
def test_garbage_snapshots_never_repeat_an_event(ops):
    plc, r = PlcRing(), reader()
    r.start(1, 0, 0)
    delivered, now_s = [], 0.0
    for op, arg in ops:
        now_s += 0.01
        if op == "events":
            for _ in range(arg):
                plc.event()
        elif op == "read":
            delivered += [slot[1] for slot in r.take(*plc.snapshot(), now_s)]
        else:
            delivered += [slot[1] for slot in r.take(*arg, now_s) if slot[1] <= plc.tracking]
    assert len(delivered) == len(set(delivered))


def test_garbage_in_between_does_not_stop_or_repeat_delivery():
    plc, r = PlcRing(), reader()
    r.start(1, 0, 0)
    got = []
    for _ in range(5):
        plc.event()
    got += r.take(*plc.snapshot(), 1.0)
    rng = random.Random(7)
    for i in range(20):
        boot, newest = rng.randrange(0x10000), rng.randrange(1 << 32)
        ring = [(rng.randrange(1 << 32), rng.randrange(1 << 32), 0) for _ in range(N)]
        assert r.take(boot, newest, ring, 1.0 + i * 0.01) == [] or boot != 1
    plc.event()
    got += r.take(*plc.snapshot(), 2.0)
    assert [s[0] for s in got] == [1, 2, 3, 4, 5, 6]


def test_inconsistent_snapshot_is_ignored_until_the_slot_is_written():
    r = reader()
    r.start(1, 0, 0)
    ring = [(0, 0, 0)] * N
    assert r.take(1, 1, ring, 1.0) == []             # the sequence number arrived before its slot
    assert r.status.anomalies == {"scan_ring_inconsistent": 1}
    ring[0] = (1, 77, 0)
    assert r.take(1, 1, ring, 1.1) == [(1, 77, 0)]


def test_sequence_going_back_without_a_restart_resynchronises_without_repeating():
    r = reader()
    r.start(1, 0, 0)
    ring = [(i + 1, 100 + i, 0) for i in range(N)]
    assert len(r.take(1, 16, ring, 1.0)) == 16
    ring[1] = (2, 500, 0)                             # the PLC counter restarted at 1 with the same boot id
    ring[0] = (1, 100, 0)
    out = r.take(1, 2, ring, 1.1)
    assert out == [(2, 500, 0)]                       # the new event; the old one (tracking 100) is dropped
    assert r.status.anomalies["scan_seq_backwards"] == 1 and r.status.anomalies["scan_duplicate"] == 1


def test_an_implausible_jump_is_not_counted_as_billions_of_lost_events():
    r = reader()
    r.start(1, 0, 0)
    r.take(1, 0, [(0, 0, 0)] * N, 1.0)
    newest = 3_000_000_000
    ring = [(0, 0, 0)] * N
    ring[(newest - 1) % N] = (newest, 42, 0)
    assert r.take(1, newest, ring, 1.01) == [(newest, 42, 0)]
    assert r.status.anomalies["scan_seq_jump"] == 1 and "scan_overrun" not in r.status.anomalies


def test_a_restart_starts_again_at_one_and_a_glitched_boot_id_comes_back_where_it_was():
    r = reader()
    r.start(1, 0, 0)
    ring = [(i + 1, 100 + i, 0) for i in range(N)]
    assert len(r.take(1, 16, ring, 1.0)) == 16
    assert r.take(9, 16, ring, 1.1) == []             # a garbage boot id, rings holding old events: duplicates
    assert r.take(1, 16, ring, 1.2) == []             # back: nothing twice, nothing counted lost
    assert "scan_overrun" not in r.status.anomalies
    fresh = [(1, 900, 0)] + [(0, 0, 0)] * (N - 1)
    assert r.take(2, 1, fresh, 1.3) == [(1, 900, 0)]


def test_first_contact_continues_after_the_acknowledgement():
    ring = [(i + 1, 100 + i, 0) for i in range(N)]
    r = reader()
    r.start(1, 10, acked=7)
    assert [s[0] for s in r.take(1, 10, ring, 1.0)] == [8, 9, 10]
    r = reader()
    r.start(1, 3, acked=500)                          # acknowledgement from an earlier PLC boot
    assert [s[0] for s in r.take(1, 3, ring, 1.0)] == [1, 2, 3]
    r = reader()
    r.start(1, 400, acked=7)                          # long ago: those parcels are past their chutes
    assert r.take(1, 400, ring, 1.0) == []


def test_impossible_events_are_dropped_and_counted():
    assert valid_scan((1, 0, 5)) == "tracking number 0"
    assert valid_confirmation((1, 5, 200, 1)).startswith("chute 200 does not exist")
    assert valid_confirmation((1, 5, 0, rm.DivertResult.DIVERTED)) == "diverted into no chute"
    assert valid_confirmation((1, 5, 0, rm.DivertResult.LOST)) is None
    r = RingReader("confirm", LinkStatus(), valid_confirmation)
    r.start(1, 0, 0)
    ring = [(1, 5, 200, 1), (2, 6, 3, 1)] + [(0, 0, 0, 0)] * (N - 2)
    assert r.take(1, 2, ring, 1.0) == [(2, 6, 3, 1)]
    assert r.status.anomalies == {"confirm_invalid": 1}


def _ring(events):
    """A ring holding (seq, tracking, encoder) events in their slots."""
    slots = [(0, 0, 0)] * N
    for e in events:
        slots[(e[0] - 1) % N] = e
    return slots


def test_a_garbage_snapshot_in_between_makes_no_event_come_twice():
    r = reader()
    r.start(1, 0, 0)
    events = [(seq, 100 + seq, 5000 + seq) for seq in range(1, 11)]
    assert [e[1] for e in r.take(1, 10, _ring(events), 1.0)] == list(range(101, 111))
    assert r.take(1, 0, [(0, 0, 0)] * N, 1.1) == []          # all zeros: a PLC whose block was cleared?
    assert r.take(1, 10, _ring(events), 1.2) == []           # no: the same events again, dropped
    assert r.status.anomalies["scan_duplicate"] == 10


def test_a_plc_that_numbers_again_under_the_same_boot_id_brings_new_parcels():
    renumbered = []
    r = RingReader("scan", LinkStatus(), valid_scan, on_renumbered=lambda boot, t: renumbered.append(t))
    r.start(1, 0, 0)
    first = [(seq, seq, 1000 * seq) for seq in range(1, 6)]
    assert len(r.take(1, 5, _ring(first), 1.0)) == 5
    # Memory reset: seq and tracking from 1 again, the encoder elsewhere.
    again = [(seq, seq, 77 + 1000 * seq) for seq in range(1, 4)]
    assert [e[1] for e in r.take(1, 3, _ring(again), 2.0)] == [1, 2, 3]
    assert renumbered == [1, 2, 3]
    assert r.take(1, 3, _ring(again), 2.1) == []            # and each of them once only


def test_a_tracking_number_seen_long_ago_is_a_new_parcel():
    r = RingReader("scan", LinkStatus(), valid_scan, reuse_after_s=60.0)
    r.start(1, 0, 0)
    assert len(r.take(1, 1, _ring([(1, 42, 9)]), 0.0)) == 1
    assert r.take(1, 2, _ring([(1, 42, 9), (2, 42, 9)]), 30.0) == []
    assert len(r.take(1, 3, _ring([(1, 42, 9), (2, 42, 9), (3, 42, 9)]), 100.0)) == 1
    assert r.status.anomalies["scan_tracking_reused"] == 1
