"""What the controller may rely on, over Modbus TCP and OPC UA alike, against the simulated PLC."""
import asyncio
import math

import pytest

from drivers import Confirmation, ScanEvent
from drivers import regmap as rm
from drivers.link import LinkError, OutsideWindow
from drivers.regmap import DivertResult
from tests.sim_plc.helpers import alive, next_event, until

from .peers import events_of, linked, sim_plc

pytestmark = [pytest.mark.timeout(30), pytest.mark.asyncio(loop_scope="session")]


async def test_scan_assignment_and_confirmation_round_trip(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        await alive(plc.model)
        p = plc.model.scan()
        ev = await next_event(link)
        assert (ev.seq, ev.tracking) == (1, p.tracking)
        await link.assign(ev.tracking, 3, 2)
        conf = await next_event(link, Confirmation, 2.0)
        assert (conf.tracking, conf.chute, conf.result) == (p.tracking, 3, DivertResult.DIVERTED)
        assert link.status.connected and link.status.plc_alive and link.status.plc_boot_id == 1
        assert not link.status.anomalies


async def test_events_in_the_ring_during_a_drop_are_delivered_once_after_it(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        await alive(plc.model)
        first = [plc.model.scan() for _ in range(3)]
        assert [e.tracking for e in await events_of(link, ScanEvent, 0.3)] == [p.tracking for p in first]
        plc.slow_answers(math.inf)                   # the PLC stops answering: the link must notice
        plc.drop_connections()
        during = [plc.model.scan() for _ in range(5)]
        await until(lambda: not link.status.connected, 2.0)
        plc.slow_answers(None)
        await link.wait_connected(2.0)
        after = [plc.model.scan() for _ in range(2)]
        got = [e.tracking for e in await events_of(link, ScanEvent, 0.5)]
        assert got == [p.tracking for p in during + after]
        assert link.status.anomalies["link_lost"] == 1


async def test_plc_restart_is_detected_and_reading_starts_again_at_one(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        await alive(plc.model)
        for _ in range(20):
            plc.model.scan()
            await asyncio.sleep(0.01)
        assert len(await events_of(link, ScanEvent, 0.3)) == 20
        await plc.restart(down_s=0.2)
        await until(lambda: link.status.connected and link.status.plc_boot_id == 2, 2.0)
        p = plc.model.scan()
        ev = await next_event(link)
        assert (ev.seq, ev.tracking) == (1, p.tracking)
        assert link.status.anomalies["plc_restart"] == 1
        # A restarted PLC has forgotten its controller block: the link beats into it again.
        await alive(plc.model)


async def test_heartbeat_keeps_running_while_the_link_heals(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        await alive(plc.model)
        plc.slow_answers(math.inf)
        await until(lambda: not plc.model.edge_alive(), 2.0)   # the PLC has stopped trusting the controller
        # and the link gives up on the silent PLC: within its timeout, or twice that when this busy
        # process's own loop was late (drivers/timed_awaits.answered)
        await until(lambda: link.status.message is not None, 2.0)
        message = link.status.message
        assert message.startswith("PLC link lost since ") and link.address in message
        plc.slow_answers(None)
        await link.wait_connected(2.0)
        await alive(plc.model)                     # the same heartbeat task beats again
        assert all(not t.done() for t in link._tasks)
        assert link.status.message is None


async def test_a_held_heartbeat_reads_and_acknowledges_but_the_plc_sees_no_controller(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        await alive(plc.model)
        link.hold_heartbeat(True)
        await until(lambda: not plc.model.edge_alive(), 2.0)
        p = plc.model.scan()
        ev = await next_event(link)
        assert ev.tracking == p.tracking
        ack = plc.model.map.edge(rm.EDGE_SCAN_ACK)
        await until(lambda: rm.join_u32(*plc.model.regs[ack:ack + 2]) == ev.seq, 1.0)
        assert not plc.model.edge_alive()
        link.hold_heartbeat(False)
        await alive(plc.model)


async def test_assignment_while_the_link_is_down_fails_at_once_with_the_address(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        await plc.stop()
        await until(lambda: not link.status.connected, 2.0)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(LinkError, match="PLC link lost since"):
            await link.assign(1, 1, 1)
        assert loop.time() - t0 < 0.05


async def test_the_controller_writes_only_its_own_block(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        before = plc.model.regs[:]
        if protocol == "modbus":
            with pytest.raises(OutsideWindow):
                await link._write(link.map.plc(1), [7], "a PLC register")
            with pytest.raises(OutsideWindow):
                await link._write(link.map.edge(111), [1, 2], "past the controller block")
        else:
            with pytest.raises(OutsideWindow):
                await link._write({"ScanSeq": 7}, "a PLC variable")
        assert plc.model.counters.readonly_writes == 0 and plc.model.regs[4:8] == before[4:8]
        with pytest.raises(ValueError):
            await link.assign(5, 0, 1)                       # chute 0 does not exist
        with pytest.raises(ValueError):
            await link.set_disabled_chutes({129})


async def test_disabled_chutes_reach_the_plc_again_after_a_restart(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        await link.set_disabled_chutes({2})
        await until(lambda: plc.model.disabled_chutes() == {2}, 1.0)
        await plc.restart(down_s=0.1)
        assert plc.model.disabled_chutes() == set()
        await until(lambda: plc.model.disabled_chutes() == {2}, 2.0)


async def test_a_new_controller_continues_after_its_own_acknowledgement(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port):
        async with linked(protocol, port) as link:
            await alive(plc.model)
            plc.model.scan()
            await next_event(link)
            await asyncio.sleep(0.15)                  # one heartbeat carries the acknowledgement
        waiting = [plc.model.scan() for _ in range(3)]   # scanned while no controller runs
        async with linked(protocol, port) as link:
            got = [e.tracking for e in await events_of(link, ScanEvent, 0.3)]
            assert got == [p.tracking for p in waiting]
            await link.assign(waiting[0].tracking, 1, 2)
            assert plc.model.counters.refused_duplicate == 0
