"""The simulated PLC through the real Modbus link: tracking, deadlines, heartbeat, chute state."""
import asyncio

import pytest

from drivers import Confirmation
from drivers import regmap as rm
from drivers.regmap import DivertResult, Refusal, join_u32
from sim_plc.chutes import ChuteSettings
from sim_plc.model import PLC_CYCLE_S

from .helpers import GEOMETRY, alive, next_event, plc_and_link, until

pytestmark = pytest.mark.timeout(30)


def header(model) -> list[int]:
    return model.regs[model.map.plc(0):model.map.plc(rm.PLC_HEADER_WORDS)]


async def test_assignment_in_time_diverts_into_the_chute_at_the_computed_time(port):
    async with plc_and_link(port) as (_, model, link):
        await alive(model)
        p = model.scan(expected_chute=3)
        ev = await next_event(link)
        assert ev.tracking == p.tracking and ev.seq == 1
        assert ev.encoder_counts == GEOMETRY.counts(p.scan_m)
        await link.assign(ev.tracking, 3, 2)
        conf = await next_event(link, Confirmation, 2.0)
        assert (conf.tracking, conf.chute, conf.result) == (p.tracking, 3, DivertResult.DIVERTED)
        assert p.actual_chute == 3
        # Diverter 3 fires when the parcel is 1.0 m - 0.1 s x 2 m/s = 0.8 m past the scan point.
        assert abs(p.divert_error_s) < 0.01
        assert p.landed_at_s - p.scan_time_s == pytest.approx(1.0 / 2.0, abs=0.02)


async def test_the_encoder_counts_belt_travel_continuously(port):
    async with plc_and_link(port) as (_, model, link):
        loop = asyncio.get_running_loop()
        t0, c0 = loop.time(), join_u32(*header(model)[rm.PLC_ENCODER:rm.PLC_ENCODER + 2])
        await asyncio.sleep(0.2)
        t1, c1 = loop.time(), join_u32(*header(model)[rm.PLC_ENCODER:rm.PLC_ENCODER + 2])
        # 2 m/s at 1 mm per count: 2000 counts per second, refreshed every PLC cycle.
        assert (c1 - c0) == pytest.approx((t1 - t0) * 2000, abs=2000 * 0.05)   # slack for a loaded test machine


async def test_assignment_after_the_decision_point_goes_to_the_end_chute(port):
    async with plc_and_link(port) as (_, model, link):
        await alive(model)
        p = model.scan()
        ev = await next_event(link)
        await asyncio.sleep(GEOMETRY.decision_after_scan_s + 0.02)
        await link.assign(ev.tracking, 1, 2)
        conf = await next_event(link, Confirmation, 2.0)
        assert (conf.chute, conf.result) == (GEOMETRY.end_chute, DivertResult.LATE)
        assert model.counters.refused_late == 1
        assert header(model)[rm.PLC_LAST_REFUSAL] == Refusal.LATE and header(model)[rm.PLC_REFUSED] == 1
        assert p.refused[0][0] == Refusal.LATE


async def test_full_chute_is_reported_and_honoured(port):
    async with plc_and_link(port) as (_, model, link):
        await alive(model)
        model.set_chute_full(3, True)
        await until(lambda: link.chute_full == {3}, 2.0)     # the link reads the PLC's CHUTE_FULL bits
        p = model.scan()
        ev = await next_event(link)
        await link.assign(ev.tracking, 3, 2)
        conf = await next_event(link, Confirmation, 2.0)
        assert (conf.chute, conf.result) == (GEOMETRY.end_chute, DivertResult.CHUTE_UNAVAILABLE)
        assert p.unavailable == "full"
        model.set_chute_full(3, None)
        await until(lambda: link.chute_full == set(), 2.0)


async def test_a_chute_fills_up_from_landings_and_then_refuses_parcels(port):
    async with plc_and_link(port, chutes=ChuteSettings(capacity=2, empty_per_min=0.0)) as (_, model, link):
        await alive(model)
        results = []
        for _ in range(3):
            model.scan()
            ev = await next_event(link)
            await link.assign(ev.tracking, 1, 2)
            results.append((await next_event(link, Confirmation, 2.0)).result)
        assert results == [DivertResult.DIVERTED, DivertResult.DIVERTED, DivertResult.CHUTE_UNAVAILABLE]
        assert model.chutes.landed[1] == 2
        await until(lambda: link.chute_full == {1}, 2.0)


async def test_disabled_chutes_are_echoed_and_never_used(port):
    async with plc_and_link(port) as (_, model, link):
        await alive(model)
        await link.set_disabled_chutes({2})
        a = model.map.plc(rm.PLC_CHUTE_DISABLED)
        await until(lambda: rm.chutes_from_bits(model.regs[a:a + rm.CHUTE_BIT_WORDS]) == {2}, 1.0)
        p = model.scan()
        await link.assign((await next_event(link)).tracking, 2, 2)
        await until(lambda: p.result is not None, 2.0)
        assert (p.result, p.unavailable) == (DivertResult.CHUTE_UNAVAILABLE, "disabled")


async def test_controller_heartbeat_loss_makes_the_plc_reject_on_its_own_within_the_timeout(port):
    timeout_s = 0.2
    async with plc_and_link(port, heartbeat_timeout_s=timeout_s) as (_, model, link):
        await alive(model)
        loop = asyncio.get_running_loop()
        for t in link._tasks:          # the controller hangs: no more heartbeats, no more polls
            t.cancel()
        await until(lambda: not header(model)[rm.PLC_FLAGS] & 1, 2.0)
        noticed_s = loop.time()
        silence_s = noticed_s - model._edge_hb_changed_s
        # Documented: FLAGS bit 0 clears once the heartbeat has not changed for the timeout, checked
        # every PLC cycle (the margin here is for a loaded test machine, not for the PLC).
        assert timeout_s <= silence_s <= timeout_s + 2 * PLC_CYCLE_S + 0.1
        assert model.counters.heartbeat_losses == 1
        # A parcel with a valid assignment that reaches its decision point now still goes to the end chute.
        p = model.scan()
        model.on_edge_write(model.map.edge(rm.EDGE_ASSIGN_RING), [0, 900, *rm.split_u32(p.tracking), 1, 2])
        assert p.assigned_chute == 1
        await until(lambda: p.result is not None, 3.0)
        assert (p.actual_chute, p.result) == (GEOMETRY.end_chute, DivertResult.NO_HEARTBEAT)


async def test_sorting_resumes_when_the_heartbeat_returns(port):
    async with plc_and_link(port, heartbeat_timeout_s=0.2) as (_, model, link):
        await alive(model)
        hb = model.map.edge(rm.EDGE_HEARTBEAT)
        model.on_edge_write(hb, [model.regs[hb]])     # unchanged value: not a beat
        assert model.edge_alive()
        await link.stop()
        await until(lambda: not model.edge_alive(), 2.0)
        model.on_edge_write(hb, [(model.regs[hb] + 1) & 0xFFFF])
        assert model.edge_alive() and header(model)[rm.PLC_FLAGS] & 1
