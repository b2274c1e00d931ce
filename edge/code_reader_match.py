"""Which parcel a code reader's result belongs to: by trigger id, or by time.

- "trigger": the result's trigger id is the PLC's tracking number (the PLC triggers the reader
  with it, or both count the same photo-eye pulses from the same start).
- "time": the result belongs to the latest scan at most `window_s` before it arrived. This needs
  a reader that answers later than the PLC link reports the scan (a decode takes 10 ms and more,
  the link polls every few ms) and a window shorter than the time between two parcels.

A result may arrive before its scan event (a fast reader, a slow link poll): it waits here for
the scan, a few seconds in trigger mode, `window_s` in time mode. A parcel waits for its result
only until its own limit, and a result that comes after that is counted as late and dropped: a
decision already sent and recorded is never changed.

Times are host monotonic seconds (`*_mono`), the loop's clock.
"""
from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

from drivers.timed_awaits import OWN_STALL_S

from .code_reader_format import Problem

KEEP_S = 5.0                 # trigger mode: a result waits this long for its scan
REMEMBERED = 4096            # results waiting, and parcels already decided, at most


@dataclass(frozen=True)
class Result:
    trigger: int | None
    codes: tuple[str, ...]
    received_mono: float
    text: str                # the frame as received, for the record and the screen


class Matcher:
    def __init__(self, by: str, window_s: float, early_s: float = 0.0):
        if by not in ("trigger", "time"):
            raise ValueError(f"match {by!r}: use trigger or time")
        self.by = by
        self.window_s = window_s
        # How far a result may seem to precede its scan: none, as the scan's time is taken a link poll
        # before the link saw it, and no reader decodes within a millisecond.
        self.early_s = early_s
        self._held: collections.OrderedDict = collections.OrderedDict()   # trigger mode: trigger -> Result
        self._pending: collections.deque[Result] = collections.deque()     # time mode, oldest first
        self._waiting: dict[int, tuple[float, asyncio.Future]] = {}        # tracking -> (scanned_mono, future)
        self._decided: collections.OrderedDict = collections.OrderedDict()  # tracking -> when decided (mono)

    # -- results in ---------------------------------------------------------------------------
    def add(self, result: Result) -> Problem | None:
        """A parsed result; a Problem when it cannot belong to any parcel now or later."""
        if self.by == "trigger":
            return self._add_by_trigger(result)
        return self._add_by_time(result)

    def _add_by_trigger(self, result: Result) -> Problem | None:
        if result.trigger is None:
            return Problem("garbage", f"no trigger id in a result, and [reader] match = \"trigger\": {result.text}")
        waiting = self._waiting.get(result.trigger)
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(result)
            return None
        decided_mono = self._decided.get(result.trigger)
        # A number decided long ago is a new parcel's after a PLC restart, not a late result.
        if decided_mono is not None and result.received_mono - decided_mono < KEEP_S:
            return Problem("late", f"the result for tracking {result.trigger} came after its parcel was decided "
                                   f"without it: {result.text}")
        self._held.pop(result.trigger, None)
        self._held[result.trigger] = result
        if len(self._held) > REMEMBERED:
            old = self._held.popitem(last=False)[1]
            return _unknown_trigger(old)
        return None

    def _add_by_time(self, result: Result) -> Problem | None:
        t = result.received_mono
        best = None
        for tracking, (scanned, future) in self._waiting.items():
            if scanned - self.early_s <= t <= scanned + self.window_s and not future.done():
                if best is None or scanned > best[0]:
                    best = (scanned, future)
        if best is not None:
            best[1].set_result(result)
            return None
        self._pending.append(result)
        if len(self._pending) > REMEMBERED:
            return _unmatched(self._pending.popleft(), self.window_s)
        return None

    # -- parcels --------------------------------------------------------------------------------
    async def wait(self, tracking: int, scanned_mono: float, until_mono: float) -> Result | None:
        """The result of this parcel, or None when none has come by `until_mono`."""
        try:
            found = self._take(tracking, scanned_mono)
            if found is not None:
                return found
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            self._waiting[tracking] = (scanned_mono, future)
            try:
                await asyncio.wait({future}, timeout=max(0.0, until_mono - loop.time()))
                if not future.done() and loop.time() - until_mono > OWN_STALL_S:
                    # This loop was held past the limit (not the reader late): a result lying unread
                    # in the socket meanwhile is taken, as the PLC link takes its late answers.
                    for _ in range(2):
                        await asyncio.sleep(0)
                return future.result() if future.done() else None
            finally:
                if self._waiting.get(tracking, (None, None))[1] is future:
                    del self._waiting[tracking]
        finally:
            self._decided[tracking] = asyncio.get_running_loop().time()
            self._decided.move_to_end(tracking)
            while len(self._decided) > REMEMBERED:
                self._decided.popitem(last=False)

    def _take(self, tracking: int, scanned_mono: float) -> Result | None:
        if self.by == "trigger":
            return self._held.pop(tracking, None)
        for result in self._pending:
            if scanned_mono - self.early_s <= result.received_mono <= scanned_mono + self.window_s:
                self._pending.remove(result)
                return result
        return None

    def expire(self, now_mono: float) -> list[Problem]:
        """Results that no parcel can claim any more: counted, with what they said."""
        out = []
        if self.by == "trigger":
            while self._held:
                trigger, result = next(iter(self._held.items()))
                if now_mono - result.received_mono < KEEP_S:
                    break
                self._held.popitem(last=False)
                out.append(_unknown_trigger(result))
        else:
            while self._pending and now_mono - self._pending[0].received_mono > self.window_s + 1.0:
                out.append(_unmatched(self._pending.popleft(), self.window_s))
        return out


def _unknown_trigger(result: Result) -> Problem:
    return Problem("unknown_trigger", f"trigger id {result.trigger} is no parcel's tracking number (none within "
                                      f"{KEEP_S:g} s): {result.text}")


def _unmatched(result: Result, window_s: float) -> Problem:
    return Problem("unmatched", f"no parcel's scan in the {window_s * 1000:.0f} ms before this result, or its parcel "
                                f"was decided without it: {result.text}")
