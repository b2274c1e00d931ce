"""Untrusted PLCs: garbage, impossible numbers, refusals and silence give a counted anomaly and a clear
log line, never a crash, a hang or an assignment for an event the PLC did not publish."""
import asyncio
import logging
import math
import random

import pytest

from drivers import ScanEvent
from drivers import regmap as rm
from drivers.link import OpcUaSettings
from drivers.regmap import split_u32
from tests.sim_plc.helpers import alive, next_event, until

from .peers import events_of, linked, poke, sim_plc

pytestmark = [pytest.mark.timeout(30), pytest.mark.asyncio(loop_scope="session")]


def healthy(link) -> bool:
    return all(not t.done() for t in link._tasks) and "internal_error" not in link.status.anomalies


async def test_a_plc_block_full_of_garbage_delivers_nothing_and_reading_resumes(protocol, opcua_server, caplog):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        model = plc.model
        await alive(model)
        model.scan()
        await next_event(link)
        base = model.map.plc(0)
        saved = model.regs[base:base + rm.PLC_BLOCK_WORDS]
        rng = random.Random(4)
        for _ in range(30):                     # the PLC program keeps rewriting its own words in between
            poke(model, base, [rng.randrange(0x10000) for _ in range(rm.PLC_BLOCK_WORDS)])
            await asyncio.sleep(0.01)
        assert await events_of(link, ScanEvent, 0.1) == []
        poke(model, base, saved)
        p = model.scan()
        ev = await next_event(link)
        assert (ev.seq, ev.tracking) == (2, p.tracking)
        assert await events_of(link, ScanEvent, 0.2) == []
        assert healthy(link) and sum(link.status.anomalies.values()) > 0
        assert model.counters.refused_unknown == 0
        assert any(r.name == "sortline.link" and r.levelno >= logging.WARNING for r in caplog.records)


async def test_an_out_of_range_sequence_number_is_ignored_until_it_makes_sense(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        model = plc.model
        await alive(model)
        poke(model, model.map.plc(rm.PLC_SCAN_SEQ), list(split_u32(0xFFFFFFF0)))
        await asyncio.sleep(0.2)
        assert link.status.anomalies["scan_ring_inconsistent"] >= 1
        p = model.scan()                          # the PLC writes its real sequence number again
        ev = await next_event(link)
        assert (ev.seq, ev.tracking) == (1, p.tracking) and healthy(link)


async def test_a_confirmation_for_an_impossible_chute_is_dropped_and_counted(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        model = plc.model
        slot = model.map.plc(rm.PLC_CONFIRM_RING)
        poke(model, slot, [0, 1, 0, 5, 999, rm.DivertResult.DIVERTED])
        poke(model, model.map.plc(rm.PLC_CONFIRM_SEQ), [0, 1])
        await until(lambda: link.status.anomalies.get("confirm_invalid") == 1, 1.0)
        assert link.events.empty() and healthy(link)


async def test_a_scan_event_with_tracking_number_zero_is_dropped_and_counted(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port), linked(protocol, port) as link:
        model = plc.model
        poke(model, model.map.plc(rm.PLC_SCAN_RING), [0, 1, 0, 0, 0, 0])
        poke(model, model.map.plc(rm.PLC_SCAN_SEQ), [0, 1])
        await until(lambda: link.status.anomalies.get("scan_invalid") == 1, 1.0)
        assert link.events.empty() and healthy(link)


async def test_a_peer_that_accepts_and_never_answers_is_bounded(protocol, opcua_server):
    async with sim_plc(protocol, opcua_server) as (plc, port):
        plc.slow_answers(math.inf)
        async with linked(protocol, port, connect=False) as link:
            await asyncio.sleep(1.5)
            assert not link.status.connected and healthy(link)
            attempts = link.status.anomalies["no_answer"]
            assert 1 <= attempts <= 5                # capped backoff: no busy loop
            assert link.address in link.status.message
            with pytest.raises(ConnectionError):
                await link.assign(1, 1, 1)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
        assert loop.time() - t0 < 1.0                # stop() is bounded too
        plc.slow_answers(None)


async def test_modbus_exceptions_name_the_setting_to_check(opcua_server):
    async with sim_plc("modbus", opcua_server) as (plc, port):
        rm_far = rm.RegisterMap(plc_base=2000, edge_base=2300)      # beyond what this PLC serves
        async with linked("modbus", port, connect=False, regmap=rm_far) as link:
            await until(lambda: link.status.anomalies.get("modbus_exception", 0) >= 2, 3.0)
            requests = plc.modbus.requests
            await asyncio.sleep(1.0)
            assert plc.modbus.requests - requests <= 4           # capped backoff between attempts
            assert "ILLEGAL DATA ADDRESS" in link.status.last_error and "plc_base" in link.status.last_error
            assert not link.status.connected and healthy(link)


async def test_an_opcua_bad_status_pauses_reading_and_nothing_is_lost(opcua_server):
    async with sim_plc("opcua", opcua_server) as (plc, port), linked("opcua", port) as link:
        model = plc.model
        await alive(model)
        await opcua_server.fail_variable("ScanEvents")
        await until(lambda: link.status.anomalies.get("opcua_bad_status", 0) >= 1, 1.0)
        during = [model.scan() for _ in range(3)]
        assert await events_of(link, ScanEvent, 0.2) == []
        opcua_server.restore_variable("ScanEvents")
        got = await events_of(link, ScanEvent, 0.3)
        assert [e.tracking for e in got] == [p.tracking for p in during] and healthy(link)


async def test_an_opcua_server_without_the_interface_is_named(opcua_server):
    async with sim_plc("opcua", opcua_server) as (plc, port):
        async with linked("opcua", port, connect=False,
                          opcua=OpcUaSettings(path="/sorter/", namespace="urn:acme:other")) as link:
            await until(lambda: bool(link.status.last_error), 3.0)
            assert 'no namespace "urn:acme:other"' in link.status.last_error
            assert "opcua_namespace" in link.status.last_error and healthy(link)
