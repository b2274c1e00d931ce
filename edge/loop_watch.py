"""How long the event loop was held: the one resource every parcel, heartbeat and poll shares.

A task sleeps a few milliseconds at a time and measures how late it wakes up. Anything that
holds the loop (a blocking call, a long computation, the collector) shows as a late wake-up,
whatever caused it. The longest hold of the last minute is on the metrics; a hold above
`ALARM_MS` is an alarm, since by then heartbeats and polls have waited as long.
"""
import asyncio
import collections
import logging
import time

log = logging.getLogger("sortline.edge")

TICK_S = 0.005
WINDOW_S = 60.0
ALARM_MS = 50.0


class LoopWatch:
    def __init__(self, alarms, tick_s: float = TICK_S, alarm_ms: float = ALARM_MS):
        self.alarms = alarms
        self.tick_s, self.alarm_ms = tick_s, alarm_ms
        self.longest_s = 0.0                     # since start
        self.holds_over_alarm = 0
        self._window: collections.deque[tuple[float, float]] = collections.deque()   # (when, held) per second
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="loop-watch")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    @property
    def recent_longest_s(self) -> float:
        """The longest hold within the last minute."""
        return max((held for _, held in self._window), default=0.0)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        second_start, second_max = loop.time(), 0.0
        while True:
            before = loop.time()
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            held = max(0.0, now - before - self.tick_s)
            second_max = max(second_max, held)
            if held * 1000 > self.alarm_ms:
                self._held_long(held)
            if now - second_start >= 1.0:
                self._window.append((now, second_max))
                while self._window and now - self._window[0][0] > WINDOW_S:
                    self._window.popleft()
                self.longest_s = max(self.longest_s, second_max)
                second_start, second_max = now, 0.0

    def _held_long(self, held_s: float) -> None:
        self.holds_over_alarm += 1
        self.alarms.raise_(
            "loop_held", f"the controller's event loop was held {held_s * 1000:.0f} ms at "
            f"{time.strftime('%H:%M:%S')} ({self.holds_over_alarm} times over {self.alarm_ms:.0f} ms since start): "
            f"polls, heartbeats and assignments waited that long",
            "look in the log for what ran at that time (a plan reload, a disk or another program taking the CPU); "
            "if it recurs, send the log to support", hold_s=300, level=logging.WARNING)
