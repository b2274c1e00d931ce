"""The belt as the PLC knows it: travel since start-up, and timers that fire at a belt position.

A PLC tracks parcels by encoder counts, not by time: when the belt stops (e-stop, jam, restart)
the parcels stop with it, and so does everything that was to happen to them. Timers here are
therefore keyed by belt travel (`*_m`) and turned into host monotonic times (`*_mono_s`) only
while the belt runs; stopping the belt disarms them, starting it re-arms them.
"""
import asyncio
import itertools
import time


class BeltTimer:
    __slots__ = ("position_m", "callback", "args", "handle", "planned_mono_s", "id", "lead_s")

    def __init__(self, position_m, callback, args, timer_id, lead_s):
        self.position_m, self.callback, self.args, self.id, self.lead_s = position_m, callback, args, timer_id, lead_s
        self.handle = None
        self.planned_mono_s = None


class Belt:
    def __init__(self, speed_m_s: float, loop: asyncio.AbstractEventLoop | None = None):
        if speed_m_s <= 0:
            raise ValueError(f"belt speed must be positive, got {speed_m_s} m/s")
        self.speed_m_s = speed_m_s
        self._loop = loop or asyncio.get_running_loop()
        self._origin_m = 0.0                      # travel at the last start or stop
        self._origin_mono_s = self._loop.time()
        self.running = False
        self._timers: dict[int, BeltTimer] = {}
        self._ids = itertools.count()

    # -- where the belt is ---------------------------------------------------------------------
    def position_m(self, now_mono_s: float | None = None) -> float:
        if not self.running:
            return self._origin_m
        now = self._loop.time() if now_mono_s is None else now_mono_s
        return self._origin_m + (now - self._origin_mono_s) * self.speed_m_s

    def time_at(self, position_m: float) -> float | None:
        """When the belt reaches `position_m` at its current speed; None while it stands still."""
        if not self.running:
            return None
        return self._origin_mono_s + (position_m - self._origin_m) / self.speed_m_s

    # -- running and stopping -----------------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        self._origin_mono_s = self._loop.time()
        self.running = True
        for timer in self._timers.values():
            self._arm(timer)

    def stop(self) -> None:
        if not self.running:
            return
        self._origin_m = self.position_m()
        self._origin_mono_s = self._loop.time()
        self.running = False
        for timer in self._timers.values():
            if timer.handle is not None:
                timer.handle.cancel()
                timer.handle = None

    # -- timers -----------------------------------------------------------------------------------
    def at(self, position_m: float, callback, *args, lead_s: float = 0.0) -> BeltTimer:
        """Call `callback(planned_mono_s, *args)` when the belt reaches `position_m`.

        With `lead_s`, the loop wakes that much early and the last stretch is waited out in a
        spin: an event loop wakes up late by a few hundred microseconds at best and by
        milliseconds on a loaded machine, which a diverter cannot afford.
        """
        timer = BeltTimer(position_m, callback, args, next(self._ids), lead_s)
        self._timers[timer.id] = timer
        if self.running:
            self._arm(timer)
        return timer

    def cancel(self, timer: BeltTimer | None) -> None:
        if timer is None:
            return
        self._timers.pop(timer.id, None)
        if timer.handle is not None:
            timer.handle.cancel()
            timer.handle = None

    def cancel_all(self, timers) -> None:
        for timer in list(timers):
            self.cancel(timer)

    async def reach(self, position_m: float) -> float:
        """Wait until the belt has travelled to `position_m`; returns the planned monotonic time."""
        future = self._loop.create_future()
        timer = self.at(position_m, lambda planned: future.done() or future.set_result(planned))
        try:
            return await future
        finally:
            self.cancel(timer)

    @property
    def pending(self) -> int:
        return len(self._timers)

    def _arm(self, timer: BeltTimer) -> None:
        timer.planned_mono_s = self.time_at(timer.position_m)
        timer.handle = self._loop.call_at(timer.planned_mono_s - timer.lead_s, self._fire, timer)

    def _fire(self, timer: BeltTimer) -> None:
        if self._timers.pop(timer.id, None) is None:
            return
        timer.handle = None
        if timer.lead_s:
            # loop.time() is time.monotonic(): the same clock, read without the loop's indirection.
            while time.monotonic() < timer.planned_mono_s:
                pass
        timer.callback(timer.planned_mono_s, *timer.args)
