"""Alarms: every fault that stops or degrades sorting, with its cause and what to do.

The machine state (edge/state.py) is one word for the line as a whole; alarms are the list
behind it. Each alarm has a key (what it is about: "records_corrupt", "chute_bits_unknown"), a
cause and a remedy written for the person at the line. An alarm is raised once and logged once,
however often its cause recurs, and stays until its cause clears; an alarm about something that
happened (the PLC reused its numbers) rather than a condition that lasts clears itself after
`hold_s` without recurrence. The line screen shows the active alarms, the metrics export one
gauge per key, and the log has one line when an alarm is raised and one when it clears.

Any part of the controller may raise alarms from the event loop or from a thread of its own
(the records writer): the list is guarded by a lock and nothing here waits on anything else.
"""
import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("sortline.alarms")


@dataclass(frozen=True)
class Alarm:
    key: str
    cause: str
    remedy: str
    since_wall: float            # first raised (wall clock, for people)
    last_wall: float             # raised again most recently
    count: int                   # times raised since it became active
    clears_mono: float | None    # self-clearing alarms: when, if not raised again

    def as_dict(self) -> dict:
        return {"key": self.key, "cause": self.cause, "remedy": self.remedy, "since_wall": self.since_wall,
                "last_wall": self.last_wall, "count": self.count}


class Alarms:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._active: dict[str, Alarm] = {}
        self.raised_total: dict[str, int] = {}     # per key, since start: the metrics' counter

    def raise_(self, key: str, cause: str, remedy: str, *, hold_s: float | None = None,
               level: int = logging.ERROR) -> None:
        """Raise (or keep) alarm `key`; logged when new or when its cause changes.

        With `hold_s` the alarm clears itself that long after it was last raised: for events
        (a PLC that reused its numbers) rather than lasting conditions (a disk that is full).
        """
        now_wall, now_mono = time.time(), self._clock()
        clears = None if hold_s is None else now_mono + hold_s
        with self._lock:
            old = self._active.get(key)
            self.raised_total[key] = self.raised_total.get(key, 0) + 1
            if old is None:
                self._active[key] = Alarm(key, cause, remedy, now_wall, now_wall, 1, clears)
            else:
                self._active[key] = Alarm(key, cause, remedy, old.since_wall, now_wall, old.count + 1, clears)
        if old is None or old.cause != cause:
            log.log(level, "alarm %s: %s; %s", key, cause, remedy)

    def clear(self, key: str) -> None:
        with self._lock:
            old = self._active.pop(key, None)
        if old is not None:
            log.info("alarm %s cleared (raised %d times since %s)", key, old.count,
                     time.strftime("%H:%M:%S", time.localtime(old.since_wall)))

    def set(self, key: str, problem: tuple[str, str] | None, **kwargs) -> None:
        """Raise with (cause, remedy), or clear when `problem` is None: for conditions polled each round."""
        if problem is None:
            self.clear(key)
        else:
            self.raise_(key, *problem, **kwargs)

    def is_active(self, key: str) -> bool:
        return key in self._active

    def active(self) -> list[Alarm]:
        """The active alarms, oldest first; self-clearing alarms past their time are dropped here."""
        now = self._clock()
        with self._lock:
            expired = [self._active.pop(k) for k, a in list(self._active.items())
                       if a.clears_mono is not None and a.clears_mono <= now]
            active = sorted(self._active.values(), key=lambda a: a.since_wall)
        for old in expired:
            log.info("alarm %s cleared: not seen again for a while (raised %d times)", old.key, old.count)
        return active
