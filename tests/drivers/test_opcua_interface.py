"""The OPC UA interface as docs/plc-interface.md describes it, checked with clients this project did not
write (asyncua's command-line tools) and with typed reads."""
import asyncio
import sys
from pathlib import Path

import pytest

from drivers import opcua_layout as lay
from drivers import regmap as rm

from .peers import sim_plc

pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="session")]

TOOLS = Path(sys.executable).parent


async def tool(name: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(str(TOOLS / name), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode()


async def test_an_independent_client_finds_reads_and_is_refused_where_documented(opcua_server):
    async with sim_plc("opcua", opcua_server) as (plc, port):
        url = opcua_server.url
        rc, listing = await tool("uals", "-u", url, "-n", "ns=2;s=Sorter.Plc", "-l", "0")
        assert rc == 0 and all(f"ns=2;s=Sorter.Plc.{v.name}" in listing for v in lay.PLC_VARS)
        rc, out = await tool("uaread", "-u", url, "-n", "ns=2;s=Sorter.Plc.Version")
        assert rc == 0 and out.split()[-1] == str(rm.INTERFACE_VERSION)
        rc, out = await tool("uawrite", "-u", url, "-n", "ns=2;s=Sorter.Plc.ScanSeq", "-t", "uint32", "5")
        assert rc != 0 and "BadUserAccessDenied" in out
        rc, out = await tool("uawrite", "-u", url, "-n", "ns=2;s=Sorter.Edge.Heartbeat", "-t", "uint16", "77")
        assert rc == 0 and plc.model.regs[plc.model.map.edge(rm.EDGE_HEARTBEAT)] == 77


async def test_variables_are_typed_and_bad_values_are_refused(opcua_server):
    from asyncua import Client, ua
    async with sim_plc("opcua", opcua_server) as (plc, port):
        async with Client(opcua_server.url, timeout=5) as client:
            def node(folder, name):
                return client.get_node(f"ns=2;s={lay.node_id(folder, name)}")
            types = {}
            for folder, name in (("Plc", "Version"), ("Plc", "ScanSeq"), ("Plc", "ScanEvents"), ("Plc", "ChuteFull"),
                                 ("Edge", "Assign03")):
                dv = await node(folder, name).read_data_value()
                types[name] = (dv.Value.VariantType, len(dv.Value.Value) if dv.Value.is_array else None)
            assert types == {"Version": (ua.VariantType.UInt16, None), "ScanSeq": (ua.VariantType.UInt32, None),
                             "ScanEvents": (ua.VariantType.UInt32, lay.SCAN_EVENTS_LEN),
                             "ChuteFull": (ua.VariantType.Boolean, rm.MAX_CHUTES),
                             "Assign03": (ua.VariantType.UInt32, 4)}
            with pytest.raises(ua.UaStatusCodeError, match="BadOutOfRange"):
                await node("Edge", "Assign03").write_value(ua.Variant([7, 1, 70000, 1], ua.VariantType.UInt32))
            with pytest.raises(ua.UaStatusCodeError, match="BadTypeMismatch"):
                await node("Edge", "ScanAck").write_value(ua.Variant(5, ua.VariantType.Int32))
            assert plc.model.counters.refused_chute == 0
