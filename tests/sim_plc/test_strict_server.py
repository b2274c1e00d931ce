"""The simulated PLC answers Modbus as strictly as docs/plc-interface.md states: function codes 3 and
16 only, the configured unit id only, and at its cycle's pace when asked to; checked with pymodbus'
client and with mbpoll (libmodbus)."""
import asyncio
import json
import re
import shutil
import signal
import struct
import sys

import pytest

from drivers import ScanEvent
from drivers.regmap import DivertResult
from edge.config_copy import derive_config
from sim_plc.plc import SimPlc
from tests.conftest import REPO

from .helpers import GEOMETRY, line_config, plc_and_link, until

pytestmark = pytest.mark.timeout(60)

ILLEGAL_FUNCTION, ILLEGAL_ADDRESS, ILLEGAL_VALUE, GATEWAY_TARGET = 1, 2, 3, 11
needs_mbpoll = pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll not installed: apt-get install mbpoll")


async def client_for(port):
    from pymodbus.client import AsyncModbusTcpClient
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.0, retries=0)
    assert await client.connect()
    return client


async def raw_request(port, unit: int, pdu: bytes) -> bytes:
    """One Modbus TCP request as bytes; the answer's PDU."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(struct.pack(">HHHB", 1, 0, len(pdu) + 1, unit) + pdu)
        head = await asyncio.wait_for(reader.readexactly(7), 2.0)
        return await asyncio.wait_for(reader.readexactly(struct.unpack(">H", head[4:6])[0] - 1), 2.0)
    finally:
        writer.close()


def refused(rr, fc: int, code: int) -> bool:
    return rr.isError() and rr.function_code == fc | 0x80 and rr.exception_code == code


async def test_every_function_code_but_3_and_16_gets_01_and_changes_nothing(port):
    async with SimPlc(GEOMETRY, port=port) as plc:
        model, client = plc.model, await client_for(port)
        edge = model.map.edge(0)
        try:
            calls = {
                1: client.read_coils(edge, count=16),
                2: client.read_discrete_inputs(edge, count=16),
                4: client.read_input_registers(edge, count=4),
                5: client.write_coil(edge, True),
                6: client.write_register(edge, 77),
                15: client.write_coils(edge, [True] * 16),
                22: client.mask_write_register(address=edge, and_mask=0, or_mask=0xFFFF),
                23: client.readwrite_registers(read_address=0, read_count=2, write_address=edge, values=[9, 9]),
                8: client.diag_query_data(b"\x12\x34"),
                43: client.read_device_information(),
                17: client.report_device_id(),
                7: client.read_exception_status(),
            }
            for fc, call in calls.items():
                rr = await call
                assert refused(rr, fc, ILLEGAL_FUNCTION), (fc, rr)
            assert model.regs[edge:edge + 5] == [0] * 5 and not model.edge_alive()
            assert plc.modbus.illegal_functions == len(calls) and model.counters.readonly_writes == 0
            # The documented pair still works.
            assert not (await client.write_registers(edge, [5, 0, 0, 0, 0])).isError()
            assert model.regs[edge] == 5
            assert (await client.read_holding_registers(0, count=16)).registers[0] == 1
        finally:
            client.close()


async def test_a_coil_write_onto_the_controller_heartbeat_no_longer_changes_it(port):
    """A pymodbus datastore maps coils onto the same words as the holding registers: FC15 at 300
    once set bits of the controller heartbeat."""
    async with SimPlc(GEOMETRY, port=port) as plc:
        client = await client_for(port)
        try:
            heartbeat = plc.model.map.edge(0)
            rr = await client.write_coils(heartbeat, [True, False, True, True])
            assert refused(rr, 15, ILLEGAL_FUNCTION)
            assert plc.model.regs[heartbeat] == 0
        finally:
            client.close()


async def test_another_unit_id_gets_0b_and_changes_nothing(port):
    async with SimPlc(GEOMETRY, port=port, unit=7) as plc:
        client = await client_for(port)
        edge = plc.model.map.edge(0)
        try:
            assert (await client.read_holding_registers(0, count=4, device_id=7)).registers[0] == 1
            for unit in (1, 0, 6, 255):
                assert refused(await client.read_holding_registers(0, count=4, device_id=unit), 3, GATEWAY_TARGET)
                assert refused(await client.write_registers(edge, [3, 0], device_id=unit), 16, GATEWAY_TARGET)
            # The unit id is checked first, as a gateway routes before the device looks at the request.
            assert refused(await client.write_coils(edge, [True] * 8, device_id=1), 15, GATEWAY_TARGET)
            assert plc.model.regs[edge] == 0 and plc.modbus.other_units == 9
        finally:
            client.close()


async def test_register_ranges_and_counts_answer_as_before(port):
    async with SimPlc(GEOMETRY, port=port) as plc:
        model, client = plc.model, await client_for(port)
        end = len(model.regs)
        try:
            assert refused(await client.write_registers(3, [9, 9]), 16, ILLEGAL_ADDRESS)      # the PLC block
            assert refused(await client.write_registers(250, [1, 1]), 16, ILLEGAL_ADDRESS)    # between the blocks
            assert refused(await client.write_registers(end - 1, [1, 1]), 16, ILLEGAL_ADDRESS)  # past the end
            assert refused(await client.read_holding_registers(end - 1, count=2), 3, ILLEGAL_ADDRESS)
            assert model.counters.readonly_writes == 2 and model.regs[3] == model.boot_id
            # Counts beyond what one request may carry (pymodbus' client will not send them): 03.
            assert await raw_request(port, 1, bytes([3, 0, 0, 0, 126])) == bytes([0x83, ILLEGAL_VALUE])
            assert await raw_request(port, 1, bytes([16, 1, 44, 0, 124, 248]) + bytes(248)) == \
                bytes([0x90, ILLEGAL_VALUE])
        finally:
            client.close()


async def mbpoll(port, *args) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "mbpoll", "-m", "tcp", "-p", str(port), "-0", "-1", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    return proc.returncode, out.decode()


@needs_mbpoll
async def test_mbpoll_is_refused_for_other_tables_single_writes_and_other_units(port):
    async with SimPlc(GEOMETRY, port=port) as plc:
        model = plc.model
        for table in ("0", "1", "3"):                        # coils, discrete inputs, input registers
            rc, out = await mbpoll(port, "-a", "1", "-t", table, "-r", "0", "-c", "4", "127.0.0.1")
            assert rc != 0 and "Illegal function" in out, out
        # One value is written with function code 6 (coil: 5), several with 16 (coils: 15).
        rc, out = await mbpoll(port, "-a", "1", "-t", "4", "-r", "300", "127.0.0.1", "5")
        assert rc != 0 and "Illegal function" in out, out
        rc, out = await mbpoll(port, "-a", "1", "-t", "0", "-r", "300", "127.0.0.1", "1", "1")
        assert rc != 0 and "Illegal function" in out, out
        assert model.regs[300] == 0
        rc, out = await mbpoll(port, "-a", "2", "-t", "4", "-r", "0", "-c", "4", "127.0.0.1")
        assert rc != 0 and "Target device failed to respond" in out, out
        rc, out = await mbpoll(port, "-a", "1", "-t", "4", "-r", "300", "127.0.0.1", "5", "0")
        assert rc == 0, out
        rc, out = await mbpoll(port, "-a", "1", "-t", "4", "-r", "0", "-c", "4", "127.0.0.1")
        assert rc == 0 and re.search(r"^\[0\]:\s+1$", out, re.M), out
        assert model.regs[300] == 5 and plc.modbus.illegal_functions == 5 and plc.modbus.other_units == 1


# -- the PLC cycle -----------------------------------------------------------------------------------
async def answered_per_s(server, window_s: float) -> float:
    before = server.answered
    await asyncio.sleep(window_s)
    return (server.answered - before) / window_s


async def test_one_request_per_20_ms_cycle_and_the_parcels_are_still_decided(port):
    async with plc_and_link(port) as (plc, model, link):
        fast = await answered_per_s(plc.modbus, 0.5)
        plc.modbus.serve_in_cycles(0.020, one_per_cycle=True)
        await until(model.edge_alive, 2.0)
        paced = await answered_per_s(plc.modbus, 1.0)
        assert fast > 100 and paced <= 51, (fast, paced)    # 50 cycles in the second, and the one it began in
        parcels = []
        for _ in range(5):
            parcels.append(model.scan())
            async with asyncio.timeout(1.0):
                while not isinstance(ev := await link.events.get(), ScanEvent):
                    pass
            await link.assign(ev.tracking, 2, 1)
            await asyncio.sleep(0.1)
        await until(lambda: all(p.result is not None for p in parcels), 3.0)
        assert [p.result for p in parcels] == [DivertResult.DIVERTED] * 5
        assert all(p.assigned_at_s - p.scan_time_s < GEOMETRY.decision_m / GEOMETRY.belt_speed_m_s for p in parcels)


async def test_requests_from_two_clients_share_the_cycle_one_at_a_time(port):
    async with SimPlc(GEOMETRY, port=port) as plc:
        plc.modbus.serve_in_cycles(0.020, one_per_cycle=True)
        clients = [await client_for(port), await client_for(port)]
        done = [0, 0]

        async def poll(i):
            while True:
                await clients[i].read_holding_registers(0, count=16)
                done[i] += 1
        tasks = [asyncio.create_task(poll(i)) for i in range(2)]
        try:
            await asyncio.sleep(1.0)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for client in clients:
                client.close()
        # Without one request per cycle each would be answered every cycle (about 100 in all).
        assert sum(done) <= 51 and min(done) >= 15, done
        plc.modbus.serve_in_cycles(None)


async def test_sortline_sim_answers_the_configured_unit_at_the_cycle_asked_for(tmp_path, port):
    from pymodbus.client import AsyncModbusTcpClient
    config = derive_config(line_config(tmp_path, port).path, tmp_path / "unit5.toml", {"plc": {"unit": 5}})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(config), "--parcels", "0", "--no-realtime",
        "--plc-cycle-ms", "20", "--one-request-per-cycle", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.0, retries=0)
        async with asyncio.timeout(20):
            while not await client.connect():
                await asyncio.sleep(0.1)
        assert refused(await client.read_holding_registers(0, count=4, device_id=1), 3, GATEWAY_TARGET)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for _ in range(20):
            assert (await client.read_holding_registers(0, count=4, device_id=5)).registers[0] == 1
        assert loop.time() - t0 >= 19 * 0.020
        client.close()
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    modbus = json.loads(out)["modbus"]
    assert (modbus["unit"], modbus["cycle_ms"], modbus["one_request_per_cycle"]) == (5, 20.0, True)
    assert modbus["answered"] == 21 and modbus["other_unit"] == 1 and modbus["answered_per_s"] <= 50.5
    assert (modbus["reads"], modbus["writes"]) == (20, 0)


@pytest.mark.timeout(180)
def test_bench_e2e_passes_the_cycle_to_the_plc_and_the_controller_still_decides(capsys):
    """The controller process against a PLC that answers one request per 20 ms cycle."""
    from edge.bench import e2e
    assert e2e.main(["--rate", "20000", "--parcels", "40", "--vision-budget-ms", "60", "--plc-cycle-ms", "20",
                     "--one-request-per-cycle", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    modbus = report["plc_modbus"]
    assert (report["plc_cycle_ms"], modbus["cycle_ms"], modbus["one_request_per_cycle"]) == (20.0, 20.0, True)
    assert 40 <= modbus["answered_per_s"] <= 50.5, modbus
    assert report["parcels"] == 40 and report["lost"] == 0
    # Decided and assigned before the decision point (a loaded host may make one or two late).
    assert report["by_reason"].get("LATE", 0) <= 2 and report["correct"] >= 37, report["by_reason"]


@pytest.mark.parametrize("args, message", [
    (["--one-request-per-cycle"], "needs the cycle"),
    (["--plc-cycle-ms", "0"], "more than 0"),
])
async def test_cycle_options_are_checked(tmp_path, port, args, message):
    config = line_config(tmp_path, port)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(config.path), "--parcels", "0", *args, cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and message in err.decode(), err.decode()[-2000:]


def test_bench_e2e_refuses_a_cycle_for_opcua(capsys):
    from edge.bench import e2e
    with pytest.raises(SystemExit):
        e2e.main(["--protocol", "opcua", "--plc-cycle-ms", "10"])
    assert "use it with --protocol modbus" in capsys.readouterr().err
