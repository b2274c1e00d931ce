"""The simulated PLC through the real Modbus link: tracking, deadlines, heartbeat, refusals."""
import asyncio

import pytest

from drivers import Confirmation
from drivers.regmap import DivertResult

from .helpers import GEOMETRY, alive, next_event, plc_and_link, until

pytestmark = pytest.mark.timeout(30)


async def test_assignment_in_time_diverts_into_the_chute(port):
    async with plc_and_link(port) as (_, model, link):
        await alive(model)
        p = model.scan(expected_chute=3)
        ev = await next_event(link)
        assert ev.tracking == p.tracking and ev.seq == 1
        await link.assign(ev.tracking, 3, 2)
        conf = await next_event(link, Confirmation, 2.0)
        assert (conf.tracking, conf.chute, conf.result) == (p.tracking, 3, DivertResult.DIVERTED)
        assert p.actual_chute == 3
        # The diverter fires at arrival minus switch time, within a few ms of the computed time.
        assert abs(p.divert_error_s) < 0.01


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


async def test_full_chute_sends_the_parcel_to_the_end_chute(port):
    async with plc_and_link(port) as (_, model, link):
        await alive(model)
        model.set_chute_full(3, True)
        p = model.scan()
        ev = await next_event(link)
        await link.assign(ev.tracking, 3, 2)
        conf = await next_event(link, Confirmation, 2.0)
        assert (conf.chute, conf.result) == (GEOMETRY.end_chute, DivertResult.CHUTE_UNAVAILABLE)


async def test_chute_out_of_range_and_duplicate_and_unknown_are_refused(port):
    async with plc_and_link(port) as (_, model, link):
        await alive(model)
        model.scan()
        ev = await next_event(link)
        await link.assign(ev.tracking, 99, 2)
        await link.assign(ev.tracking, 1, 2)
        await link.assign(123456, 1, 2)
        conf = await next_event(link, Confirmation, 2.0)
        assert conf.result == DivertResult.INVALID_ASSIGNMENT
        c = model.counters
        assert (c.refused_chute, c.refused_duplicate, c.refused_unknown) == (1, 1, 1)


async def test_controller_heartbeat_loss_makes_the_plc_reject_on_its_own(port):
    async with plc_and_link(port, heartbeat_timeout_s=0.2) as (_, model, link):
        await alive(model)
        model.scan()
        ev = await next_event(link)
        await link.assign(ev.tracking, 1, 2)
        for t in link._tasks:          # the controller stops beating, as if it hung
            t.cancel()
        await until(lambda: not model.edge_alive(), 1.0)
        model.scan()
        await until(lambda: len(model.finished) == 2, 3.0)
        results = sorted(p.result for p in model.finished)
        assert DivertResult.NO_HEARTBEAT in results


async def test_writes_to_the_plc_block_are_refused(port):
    from pymodbus.client import AsyncModbusTcpClient
    async with plc_and_link(port) as (server, model, link):
        client = AsyncModbusTcpClient("127.0.0.1", port=port)
        await client.connect()
        try:
            rr = await client.write_registers(1, [7], device_id=1)
            assert rr.isError()
        finally:
            client.close()
