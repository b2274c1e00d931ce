"""The controller as the PLC's adversary: every bad write is refused as documented, counted, never a crash."""
import asyncio
import contextlib

import numpy as np
import pytest

from drivers import regmap as rm
from drivers.regmap import DivertResult, Refusal, split_u32

from .helpers import GEOMETRY, plc_only, until

pytestmark = pytest.mark.timeout(30)


@contextlib.asynccontextmanager
async def raw_controller(port: int):
    """A PLC and a bare Modbus client that beats the heartbeat itself, so it can write anything."""
    from pymodbus.client import AsyncModbusTcpClient
    async with plc_only(port, heartbeat_timeout_s=5.0) as plc:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.0, retries=0)
        await client.connect()
        try:
            await client.write_registers(rm.EDGE_HEARTBEAT + 300, [1], device_id=1)
            await until(plc.model.edge_alive, 2.0)
            yield plc, client
        finally:
            client.close()


def header(model) -> list[int]:
    return model.regs[:rm.PLC_HEADER_WORDS]


async def assign(client, slot: int, aseq: int, tracking: int, chute: int, reason: int = 2):
    rr = await client.write_registers(300 + rm.EDGE_ASSIGN_RING + slot * rm.SLOT_WORDS,
                                      [*split_u32(aseq), *split_u32(tracking), chute, reason], device_id=1)
    assert not rr.isError()


@pytest.mark.parametrize("address, count", [(1, 1), (0, 16), (231, 2), (250, 1), (299, 2)])
async def test_writes_outside_the_controller_block_are_refused_counted_and_change_nothing(port, address, count):
    async with raw_controller(port) as (plc, client):
        before = list(plc.model.regs[address:address + count])
        rr = await client.write_registers(address, [7] * count, device_id=1)
        assert rr.isError() and rr.exception_code == 2            # ILLEGAL DATA ADDRESS
        assert plc.model.counters.readonly_writes == 1
        await asyncio.sleep(0.02)
        # The PLC's own registers may have moved on (heartbeat, encoder); none took the value 7.
        assert all(v != 7 or b == 7 for v, b in zip(plc.model.regs[address:address + count], before))


async def test_addresses_past_the_register_image_do_not_exist(port):
    async with raw_controller(port) as (plc, client):
        rr = await client.read_holding_registers(410, count=10, device_id=1)
        assert rr.isError() and rr.exception_code == 2
        rr = await client.write_registers(411, [1, 2], device_id=1)
        assert rr.isError() and rr.exception_code == 2
        rr = await client.read_holding_registers(0, count=4, device_id=1)
        assert rr.registers[rm.PLC_VERSION] == rm.INTERFACE_VERSION


async def test_out_of_range_chute_unknown_finished_and_duplicate_assignments(port):
    async with raw_controller(port) as (plc, client):
        model = plc.model
        a, b = model.scan(), model.scan()
        await assign(client, 0, 1, a.tracking, 99)                  # no such chute
        assert header(model)[rm.PLC_LAST_REFUSAL] == Refusal.NO_SUCH_CHUTE
        await assign(client, 1, 2, a.tracking, 1)                   # second one for the same parcel
        assert header(model)[rm.PLC_LAST_REFUSAL] == Refusal.DUPLICATE
        await assign(client, 2, 3, 777777, 1)                       # nobody has that number
        assert header(model)[rm.PLC_LAST_REFUSAL] == Refusal.UNKNOWN_TRACKING
        await assign(client, 3, 4, b.tracking, 2)
        await until(lambda: a.result is not None and b.result is not None, 3.0)
        assert (a.actual_chute, a.result) == (GEOMETRY.end_chute, DivertResult.INVALID_ASSIGNMENT)
        assert (b.actual_chute, b.result) == (2, DivertResult.DIVERTED)
        await assign(client, 4, 5, b.tracking, 1)                   # after it landed
        assert header(model)[rm.PLC_LAST_REFUSAL] == Refusal.ALREADY_FINISHED
        c = model.counters
        assert (c.refused_chute, c.refused_duplicate, c.refused_unknown, c.refused_finished) == (1, 1, 1, 1)
        assert header(model)[rm.PLC_REFUSED] == 4
        assert header(model)[rm.PLC_ASSIGN_TAKEN + 1] == 5


async def test_a_rewritten_slot_with_the_same_sequence_number_is_not_taken_twice(port):
    async with raw_controller(port) as (plc, client):
        p = plc.model.scan()
        await assign(client, 0, 1, p.tracking, 1)
        await assign(client, 0, 1, p.tracking, 3)                   # same aseq: an old slot, not news
        assert p.assigned_chute == 1 and plc.model.counters.refused_duplicate == 0


async def test_disable_bits_for_chutes_the_line_does_not_have_are_ignored_and_counted(port):
    async with raw_controller(port) as (plc, client):
        rr = await client.write_registers(300 + rm.EDGE_CHUTE_DISABLE, rm.chute_bits({2, 100}), device_id=1)
        assert not rr.isError()
        assert plc.model.disabled_chutes() == {2} and plc.model.counters.bad_disable_bits == 1
        a = rm.PLC_CHUTE_DISABLED
        assert rm.chutes_from_bits(plc.model.regs[a:a + rm.CHUTE_BIT_WORDS]) == {2}


async def test_garbage_in_the_whole_controller_block_never_crashes_the_plc(port):
    rng = np.random.default_rng(3)
    async with raw_controller(port) as (plc, client):
        model = plc.model
        for _ in range(3):
            model.scan()
        for _ in range(60):
            count = int(rng.integers(1, 40))
            start = 300 + int(rng.integers(0, rm.EDGE_BLOCK_WORDS - count + 1))
            rr = await client.write_registers(start, [int(v) for v in rng.integers(0, 65536, count)], device_id=1)
            assert not rr.isError()
        # Still a working PLC: it answers, and a fresh parcel is tracked and lands somewhere.
        rr = await client.read_holding_registers(0, count=rm.SCAN_READ_WORDS, device_id=1)
        assert not rr.isError() and rr.registers[rm.PLC_VERSION] == rm.INTERFACE_VERSION
        p = model.scan()
        await until(lambda: p.result is not None, 3.0)
        c = model.counters
        assert c.refused_unknown + c.refused_chute + c.refused_duplicate + c.refused_finished > 0
