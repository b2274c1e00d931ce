"""One simulated PLC, served over Modbus TCP and OPC UA at the same time: a write over one
protocol is seen over the other, because both serve the same PLC model."""
import asyncio
import sys

import pytest

from edge.config_copy import derive_config
from tests.conftest import REPO, free_port

pytestmark = pytest.mark.timeout(60)


async def test_sortline_sim_serves_modbus_and_opcua_at_once(tmp_path):
    from asyncua import Client
    from pymodbus.client import AsyncModbusTcpClient
    modbus_port, opcua_port = free_port(), free_port()
    config = derive_config(REPO / "configs" / "county-24.toml", tmp_path / "line.toml",
                           {"plc": {"port": modbus_port}, "camera": {"folder": str(tmp_path / "cam")},
                            "records": {"folder": str(tmp_path / "rec")}})
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(config), "--parcels", "0", "--no-realtime",
        "--also-port", str(opcua_port), cwd=REPO, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(30):
            while b"opc.tcp://" not in (await sim.stderr.readline()):
                assert sim.returncode is None
        modbus = AsyncModbusTcpClient("127.0.0.1", port=modbus_port)
        assert await modbus.connect()
        opcua = Client(f"opc.tcp://127.0.0.1:{opcua_port}")
        async with asyncio.timeout(15):
            await opcua.connect()
        try:
            ns = await opcua.get_namespace_index("urn:sortline:plc")
            heartbeat = await opcua.nodes.objects.get_child([f"{ns}:Sorter", f"{ns}:Edge", f"{ns}:Heartbeat"])
            version = await opcua.nodes.objects.get_child([f"{ns}:Sorter", f"{ns}:Plc", f"{ns}:Version"])
            assert await version.read_value() == 1
            # The controller heartbeat written over Modbus (edge block at 300) reads back over OPC UA.
            assert not (await modbus.write_registers(300, [4242], device_id=1)).isError()
            async with asyncio.timeout(5):
                while await heartbeat.read_value() != 4242:
                    await asyncio.sleep(0.05)
        finally:
            modbus.close()
            await opcua.disconnect()
    finally:
        sim.terminate()
        await asyncio.wait_for(sim.wait(), 15)
