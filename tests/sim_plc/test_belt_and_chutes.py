"""The belt clock and the chute fill levels, on their own (no network)."""
import asyncio

import pytest

from sim_plc.belt import Belt
from sim_plc.chutes import ChuteBank, ChuteSettings

pytestmark = pytest.mark.timeout(20)


async def test_a_timer_fires_when_the_belt_reaches_its_position():
    loop = asyncio.get_running_loop()
    belt = Belt(2.0)
    belt.start()
    t0 = loop.time()
    planned = await belt.reach(belt.position_m(t0) + 0.1)        # 0.1 m at 2 m/s: 50 ms
    assert planned == pytest.approx(t0 + 0.05, abs=1e-3)
    assert loop.time() >= planned


async def test_a_stopped_belt_holds_its_position_and_its_timers():
    loop = asyncio.get_running_loop()
    belt = Belt(2.0)
    belt.start()
    fired = []
    belt.at(belt.position_m() + 0.1, lambda planned: fired.append(loop.time()))
    await asyncio.sleep(0.02)
    belt.stop()
    held = belt.position_m()
    await asyncio.sleep(0.1)                                    # long past the timer's original time
    assert fired == [] and belt.position_m() == held and belt.time_at(held + 1) is None
    restarted = loop.time()
    belt.start()
    await asyncio.sleep(0.1)
    # The remaining ~0.06 m take ~30 ms after the restart, not 0 ms.
    assert len(fired) == 1 and 0.02 < fired[0] - restarted < 0.08
    assert belt.pending == 0


async def test_a_cancelled_timer_never_fires():
    belt = Belt(2.0)
    belt.start()
    fired = []
    timer = belt.at(belt.position_m() + 0.02, fired.append)
    belt.cancel(timer)
    await asyncio.sleep(0.05)
    assert fired == [] and belt.pending == 0


def test_belt_speed_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Belt(0.0, loop=asyncio.new_event_loop())


def test_a_chute_fills_trips_its_sensor_and_clears_after_emptying_below_the_hysteresis():
    bank = ChuteBank([1, 2, 3], end_chute=3, settings=ChuteSettings(capacity=4, empty_per_min=60.0, clear_ratio=0.5))
    for _ in range(4):
        bank.land(1, 10.0)
    assert bank.full(10.0) == {1}
    assert bank.full(11.5) == {1}                   # 2.5 left: above 50 % of 4, sensor still on
    assert bank.full(12.0) == set()                 # 2.0 left: cleared
    assert bank.level(1, 100.0) == 0.0
    for _ in range(10):
        bank.land(3, 0.0)                           # the end chute's take-away never fills
    assert bank.full(100.0) == set() and bank.landed[3] == 10


def test_forced_sensor_states_win_over_the_level_until_released():
    bank = ChuteBank([1, 2], end_chute=2, settings=ChuteSettings(capacity=None))
    bank.land(1, 0.0)
    assert bank.full(0.0) == set()                  # no sensor: never full by level
    bank.force_full(1, True)
    assert bank.full(0.0) == {1}
    bank.force_full(1, None)
    assert bank.full(0.0) == set()


@pytest.mark.parametrize("kwargs, message", [({"capacity": 0}, "capacity"), ({"empty_per_min": -1}, "emptying"),
                                             ({"clear_ratio": 1.0}, "clear_ratio")])
def test_chute_settings_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ChuteSettings(**kwargs)
