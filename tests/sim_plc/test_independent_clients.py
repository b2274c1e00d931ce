"""A Modbus client this project did not write reads and writes the documented interface.

mbpoll writes one value with function code 6 and several with 16; the PLC serves 3 and 16 only, so
every write here carries at least two registers."""
import asyncio
import re
import shutil

import pytest

from drivers.regmap import DivertResult, Refusal, join_u32
from sim_plc.plc import SimPlc

from .helpers import GEOMETRY, plc_only, until

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll not installed: apt-get install mbpoll")]


async def mbpoll(port, *args) -> str:
    proc = await asyncio.create_subprocess_exec(
        "mbpoll", "-m", "tcp", "-p", str(port), "-a", "1", "-t", "4", "-0", "-1", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, out.decode()
    return out.decode()


def registers(text: str) -> dict[int, int]:
    return {int(a): int(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(-?\d+)", text, re.M)}


async def test_mbpoll_reads_heartbeat_and_scan_ring_and_writes_an_assignment(port):
    plc = SimPlc(GEOMETRY, port=port, heartbeat_timeout_s=5.0)
    model = plc.model
    await plc.start()
    try:
        # mbpoll plays the controller: a heartbeat first (with both acknowledgements, registers 300-304,
        # as the controller writes it), so that the PLC accepts assignments.
        await mbpoll(port, "-r", "300", "127.0.0.1", "1", "0", "0", "0", "0")
        await until(model.edge_alive, 2.0)
        p = model.scan()
        head = registers(await mbpoll(port, "-r", "0", "-c", "22", "127.0.0.1"))
        assert head[0] == 1                                   # interface version
        assert (head[4] << 16 | head[5]) == 1                 # SCAN_SEQ
        assert (head[18] << 16 | head[19]) == p.tracking      # slot 0: tracking
        # aseq 1, tracking, chute 2, reason 2 into assignment slot 0 (registers 316-321).
        await mbpoll(port, "-r", "316", "127.0.0.1", "0", "1", str(p.tracking >> 16), str(p.tracking & 0xFFFF),
                     "2", "2")
        await until(lambda: p.result is not None, 2.0)
        assert (p.actual_chute, p.result) == (2, DivertResult.DIVERTED)
        # The PLC block is read-only on the wire: refused, counted, unchanged.
        proc = await asyncio.create_subprocess_exec(
            "mbpoll", "-m", "tcp", "-p", str(port), "-a", "1", "-t", "4", "-0", "-1", "-r", "3", "127.0.0.1", "9", "9",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode != 0 or b"Illegal data address" in out
        assert model.counters.readonly_writes == 1 and model.regs[3] == model.boot_id
        # An assignment for the parcel that has just landed: refused, and the PLC says why.
        await mbpoll(port, "-r", "322", "127.0.0.1", "0", "2", str(p.tracking >> 16), str(p.tracking & 0xFFFF),
                     "1", "2")
        head = registers(await mbpoll(port, "-r", "0", "-c", "16", "127.0.0.1"))
        assert (head[14], head[15]) == (1, Refusal.ALREADY_FINISHED)
    finally:
        await plc.stop()


async def test_mbpoll_sees_the_encoder_count_the_belt_and_the_heartbeat_beat(port):
    async with plc_only(port):
        first = registers(await mbpoll(port, "-r", "0", "-c", "12", "127.0.0.1"))
        await asyncio.sleep(0.3)
        second = registers(await mbpoll(port, "-r", "0", "-c", "12", "127.0.0.1"))
        counts = [join_u32(h[8] & 0xFFFF, h[9] & 0xFFFF) for h in (first, second)]
        assert counts[1] - counts[0] >= 0.3 * 2000 * 0.9         # 2 m/s at 1 mm per count
        assert second[1] != first[1]                               # PLC heartbeat moved on
        assert first[2] == 1                                       # line state: running
