"""Exactly-once reading of a PLC event ring, whatever protocol carried the snapshot.

The PLC writes event `seq` into slot `(seq - 1) % RING_SLOTS` and then publishes `seq` as the
newest. A reader sees snapshots (boot id, newest seq, the slots) at its own pace and must hand
every event to the controller once: not twice after a reconnect or a glitch, and not silently
never. Snapshots come from an untrusted peer, so every rule below also has to hold for garbage.
"""
import collections
import logging
from collections.abc import Sequence

from . import regmap as rm
from .recent_table import RecentTable

# A sorter carries at most ~40,000 parcels/h (11/s); a sequence number that runs ahead a hundred times
# faster than that between two snapshots is not an overrun but a broken counter.
MAX_EVENTS_PER_S = 1000.0
REMEMBERED_KEYS = 8192       # tracking numbers remembered to drop duplicates (~12 min at 40,000/h)
REMEMBERED_BOOTS = 4
# A tracking number seen again after this long is a new parcel (the PLC reused its numbers),
# not a repeat of the old one: no parcel is on a belt that long. The link sets it from the line.
REUSE_AFTER_S = 600.0


class RingReader:
    def __init__(self, what: str, status, valid, slots: int = rm.RING_SLOTS, reuse_after_s: float = REUSE_AFTER_S,
                 on_renumbered=None):
        self.what = what                 # "scan" or "confirm": names the anomalies
        self.status = status             # drivers.link.LinkStatus: counts and logs anomalies
        self.valid = valid               # slot -> None or what is wrong with it
        self.slots = slots
        self.reuse_after_s = reuse_after_s
        # Called with (boot, tracking) when an event reuses a tracking number for a new parcel: long
        # after it was last seen, or after the PLC started its sequence numbers again without a
        # new boot id (a memory reset).
        self.on_renumbered = on_renumbered
        self._numbering = 0              # sequence restarts seen under one boot id
        self.boot: int | None = None
        self.last = 0                    # newest seq handled in this boot
        self._last_by_boot: collections.OrderedDict[int, int] = collections.OrderedDict()
        # tracking -> when, the numbering and a digest of the rest of the slot: what tells a replay
        # from a new parcel (the slot's other words are small integers, whose hash is their own)
        self._seen = RecentTable(REMEMBERED_KEYS, fields=2)
        self._snapshot_s: float | None = None

    @property
    def started(self) -> bool:
        return self.boot is not None

    def start(self, boot: int, newest: int, acked: int) -> None:
        """First contact: continue after the controller's own acknowledgement if the ring still holds it."""
        self.boot = boot
        if 0 <= newest - acked <= self.slots:
            self.last = acked            # a controller restart: the events past the ack are ours
        elif newest < acked:
            self.last = max(0, newest - self.slots)   # the ack is from an earlier PLC boot
        else:
            self.last = newest           # older events are long past their decision point

    def take(self, boot: int, newest: int, ring: Sequence[tuple[int, ...]], now_s: float) -> list[tuple[int, ...]]:
        """The slots of events not handled yet, in sequence order."""
        if not self.started:
            self.start(boot, newest, newest)
        if boot != self.boot:
            self._switch_boot(boot)
        # Time since the last snapshot that was taken as it came: what the PLC can have done meanwhile.
        elapsed_s = None if self._snapshot_s is None else now_s - self._snapshot_s
        n = self.slots
        if newest == self.last:
            self._snapshot_s = now_s
            return []
        if newest and ring[(newest - 1) % n][0] != newest:
            held = ring[(newest - 1) % n][0]
            why = "the ring moved on before it was read" if held > newest else \
                "the PLC must write the slot before the sequence number"
            self._anomaly("ring_inconsistent", f"PLC {self.what} sequence says {newest} but its ring slot holds "
                          f"{held}: snapshot ignored ({why})")
            return []
        if newest < self.last:
            self._anomaly("seq_backwards",
                          f"PLC {self.what} sequence went back from {self.last} to {newest} with the same boot id "
                          f"{boot}: resynchronising at {newest}; a PLC restart must change BOOT_ID")
            # Either the PLC numbers its events afresh (a memory reset, a CPU swap, a program
            # download that cleared retentive data) or this snapshot is garbage. Take what the ring
            # holds: an event already handled comes back unchanged and is dropped by its tracking
            # number; one whose tracking number comes back with another encoder count is a new
            # parcel of the new numbering (`_repeats`).
            self.last = max(0, newest - n)
            self._numbering += 1
        self._snapshot_s = now_s
        first = self.last + 1
        if newest - self.last > n:
            lost = newest - self.last - n
            plausible = n + MAX_EVENTS_PER_S * elapsed_s if elapsed_s is not None else None
            if plausible is not None and lost > plausible:
                self._anomaly("seq_jump",
                              f"PLC {self.what} sequence jumped from {self.last} to {newest} in {elapsed_s:.2f} s, "
                              f"more than a sorter can carry: resynchronising at {newest}; check the PLC program",
                              level=logging.ERROR)
            else:
                self._anomaly("overrun",
                              f"{lost} {self.what} events overwritten in the PLC ring before they were read "
                              f"(last read {self.last}, now {newest}); those parcels go to the end chute",
                              n=lost, level=logging.ERROR)
            first = newest - n + 1
        out = []
        for seq in range(first, newest + 1):
            slot = ring[(seq - 1) % n]
            if slot[0] != seq:
                self._anomaly("slot_mismatch", f"{self.what} ring slot for seq {seq} holds seq {slot[0]}: event lost",
                              level=logging.ERROR)
                continue
            problem = self.valid(slot)
            if problem:
                self._anomaly("invalid", f"{self.what} event {seq} from the PLC is invalid ({problem}): dropped",
                              level=logging.ERROR)
                continue
            if self._repeats(slot, now_s, boot):
                self._anomaly("duplicate", f"{self.what} event {seq} repeats tracking number {slot[1]}: dropped")
                continue
            self._remember(slot, now_s)
            out.append(slot)
        self.last = newest
        return out

    def _switch_boot(self, boot: int) -> None:
        if self.boot is not None:
            self._last_by_boot[self.boot] = self.last
        while len(self._last_by_boot) > REMEMBERED_BOOTS:
            self._last_by_boot.popitem(last=False)
        # Back to a boot id seen a moment ago (a garbage snapshot in between): continue where it was.
        self.last = self._last_by_boot.pop(boot, 0)
        self.boot = boot

    def _repeats(self, slot: tuple[int, ...], now_s: float, boot: int) -> bool:
        """Whether this event is one already handled (dropped) rather than a new parcel."""
        key = slot[1]
        seen = self._seen.get(key)
        if seen is None:
            return False
        seen_s, (numbering, rest) = seen
        if now_s - seen_s >= self.reuse_after_s:
            self._anomaly("tracking_reused", f"PLC {self.what} tracking number {key} came again "
                          f"{now_s - seen_s:.0f} s after it was first seen: taken as a new parcel; the PLC "
                          f"should not reuse tracking numbers (docs/plc-interface.md)")
            if self.on_renumbered is not None:
                self.on_renumbered(boot, key)
            return False
        if numbering < self._numbering and hash(tuple(slot[2:])) != rest:
            self._anomaly("tracking_reused", f"PLC {self.what} tracking number {key} came again after the "
                          f"sequence numbers started over under boot id {boot}: taken as a new parcel",
                          level=logging.ERROR)
            if self.on_renumbered is not None:
                self.on_renumbered(boot, key)
            return False
        return True

    def forget(self, key: int) -> None:
        """A tracking number now belongs to a new parcel: its next event is not a repeat."""
        self._seen.pop(key)

    def _remember(self, slot: tuple[int, ...], now_s: float) -> None:
        self._seen.put(slot[1], now_s, self._numbering, hash(tuple(slot[2:])))

    def _anomaly(self, kind: str, message: str, n: int = 1, level: int = logging.WARNING) -> None:
        self.status.anomaly(f"{self.what}_{kind}", message, n=n, level=level)


def valid_scan(slot: tuple[int, ...]) -> str | None:
    return "tracking number 0" if slot[1] == 0 else None


def valid_confirmation(slot: tuple[int, ...]) -> str | None:
    tracking, chute, result = slot[1], slot[2], slot[3]
    if tracking == 0:
        return "tracking number 0"
    if chute > rm.MAX_CHUTES:
        return f"chute {chute} does not exist (0-{rm.MAX_CHUTES}, 0: in no chute)"
    if chute == 0 and result == rm.DivertResult.DIVERTED:
        return "diverted into no chute"
    return None
