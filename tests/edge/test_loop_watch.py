"""The loop watch sees a hold of the event loop, whatever held it, and raises the alarm over 50 ms."""
import asyncio
import time

from edge.alarms import Alarms
from edge.loop_watch import LoopWatch


async def test_a_blocking_call_on_the_loop_is_measured_and_raises_the_alarm():
    alarms = Alarms()
    watch = LoopWatch(alarms)
    watch.start()
    try:
        await asyncio.sleep(0.05)
        assert not alarms.is_active("loop_held")
        time.sleep(0.03)                                   # under the alarm's 50 ms: measured, no alarm
        await asyncio.sleep(0.02)
        assert not alarms.is_active("loop_held")
        time.sleep(0.12)                                   # a disk that stalls, a parse on the loop
        await asyncio.sleep(1.1)                           # the watch closes its second
        assert alarms.is_active("loop_held")
        alarm, = alarms.active()
        assert "held 1" in alarm.cause and "ms" in alarm.cause and alarm.remedy
        assert 0.11 <= watch.recent_longest_s < 0.5 and watch.longest_s == watch.recent_longest_s
    finally:
        watch.stop()


def test_an_event_alarm_clears_itself_once_it_stops_recurring():
    now = [0.0]
    alarms = Alarms(clock=lambda: now[0])
    alarms.raise_("plc_numbers_reused", "cause", "remedy", hold_s=60)
    alarms.raise_("plc_numbers_reused", "cause", "remedy", hold_s=60)
    alarms.raise_("records_write", "disk full", "free space")
    now[0] = 59.0
    assert [a.key for a in alarms.active()] == ["plc_numbers_reused", "records_write"]
    assert alarms.active()[0].count == 2
    now[0] = 61.0
    assert [a.key for a in alarms.active()] == ["records_write"]    # a lasting condition stays
    alarms.set("records_write", None)
    assert alarms.active() == [] and alarms.raised_total == {"plc_numbers_reused": 2, "records_write": 1}
