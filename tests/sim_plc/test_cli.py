"""`sortline sim` as a PLC programmer runs it: serving until Ctrl-C, and clear messages for bad options."""
import asyncio
import json
import signal
import sys

import pytest

from tests.conftest import REPO

from .helpers import line_config

pytestmark = pytest.mark.timeout(60)


async def sim(*args, capture=True):
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def test_with_no_parcels_it_serves_until_interrupted_then_reports(tmp_path, port):
    from pymodbus.client import AsyncModbusTcpClient
    config = line_config(tmp_path, port)
    proc = await sim("--config", str(config.path), "--parcels", "0", "--boot-id", "4711")
    try:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.0, retries=0)
        async with asyncio.timeout(20):
            while not await client.connect():
                await asyncio.sleep(0.1)
        rr = await client.read_holding_registers(0, count=16, device_id=1)
        assert rr.registers[0] == 1 and rr.registers[3] == 4711       # interface version, boot id
        client.close()
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    assert report["parcels"] == 0 and "plc_refused" in report


async def test_forever_keeps_parcels_coming_until_interrupted(tmp_path, port):
    config = line_config(tmp_path, port)
    proc = await sim("--config", str(config.path), "--forever", "--no-wait", "--camera", "off", "--rate", "14000")
    try:
        await asyncio.sleep(6.0)                 # start-up, then parcels at 0.26 s intervals
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    # Nobody beats the heartbeat: every parcel that reached its decision point went to the end chute.
    assert report["parcels"] >= 5 and set(report["by_reason"]) <= {"NO_HEARTBEAT", "ON_BELT"}
    assert report["lost"] == report["by_reason"].get("ON_BELT", 0)


@pytest.mark.parametrize("args, code, message", [
    (["--fault", "5:boom"], 2, "KIND one of"),
    (["--chute-capacity", "0"], 2, "capacity must be at least 1"),
    (["--trace", "/nonexistent/trace.csv"], 1, "cannot read the arrival trace"),
    (["--rate", "40000"], 1, "use at most 14400 parcels/h"),
    (["--forever", "--camera", "all"], 1, "needs a parcel count"),
])
async def test_bad_options_exit_with_a_message(tmp_path, port, args, code, message):
    config = line_config(tmp_path, port)
    proc = await sim("--config", str(config.path), "--camera", "off", *args)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == code and message in err.decode(), err.decode()[-2000:]


async def test_every_start_is_a_new_boot_id_unless_one_is_given(tmp_path, port):
    """Its tracking numbers start at 1 each time: only the boot id tells two runs apart."""
    from pymodbus.client import AsyncModbusTcpClient
    config = line_config(tmp_path, port)
    boots = []
    for _ in range(2):
        proc = await sim("--config", str(config.path), "--parcels", "0")
        try:
            client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1.0, retries=0)
            async with asyncio.timeout(20):
                while not await client.connect():
                    await asyncio.sleep(0.1)
            boots.append((await client.read_holding_registers(0, count=16, device_id=1)).registers[3])
            client.close()
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.communicate(), 15)
    assert boots[0] != boots[1] and all(1 <= b <= 0xFFFF for b in boots)
