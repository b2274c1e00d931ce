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


async def read_until(node, wanted, timeout_s: float = 2.0):
    """The value once it is `wanted` (the PLC publishes a change within a cycle), else the last one read."""
    async with asyncio.timeout(timeout_s):
        while (value := await node.read_value()) != wanted:
            await asyncio.sleep(0.01)
    return value


async def test_last_refusal_says_why_the_newest_assignment_was_refused(opcua_server):
    from asyncua import Client, ua
    async with sim_plc("opcua", opcua_server) as (plc, port):
        async with Client(opcua_server.url, timeout=5) as client:
            last = client.get_node(f"ns=2;s={lay.node_id('Plc', 'LastRefusal')}")
            refused = client.get_node(f"ns=2;s={lay.node_id('Plc', 'Refused')}")
            dv = await last.read_data_value()
            assert (dv.Value.VariantType, dv.Value.Value) == (ua.VariantType.UInt16, 0)
            p = plc.model.scan()
            assign = [client.get_node(f"ns=2;s={lay.node_id('Edge', lay.assign_var(i))}") for i in range(2)]
            await assign[0].write_value(ua.Variant([1, p.tracking, 99, 1], ua.VariantType.UInt32))
            assert await read_until(last, rm.Refusal.NO_SUCH_CHUTE) == rm.Refusal.NO_SUCH_CHUTE
            assert await read_until(refused, 1) == 1
            await assign[1].write_value(ua.Variant([2, 987654, 1, 1], ua.VariantType.UInt32))
            assert await read_until(last, rm.Refusal.UNKNOWN_TRACKING) == rm.Refusal.UNKNOWN_TRACKING
            assert await read_until(refused, 2) == 2
            assert plc.model.regs[plc.model.map.plc(rm.PLC_LAST_REFUSAL)] == rm.Refusal.UNKNOWN_TRACKING


async def test_arrays_have_one_dimension_of_their_documented_length(opcua_server):
    from asyncua import Client
    documented = {"ScanEvents": 50, "ConfirmEvents": 66, "ChuteFull": 128, "ChuteFault": 128, "ChuteDisabled": 128,
                  "ChuteDisable": 128, **{lay.assign_var(i): 4 for i in range(rm.RING_SLOTS)}}
    async with sim_plc("opcua", opcua_server):
        async with Client(opcua_server.url, timeout=5) as client:
            shapes = {}
            for folder, variables in ((lay.PLC_FOLDER, lay.PLC_VARS), (lay.EDGE_FOLDER, lay.EDGE_VARS)):
                for var in variables:
                    node = client.get_node(f"ns=2;s={lay.node_id(folder, var.name)}")
                    rank = await node.read_value_rank()
                    shapes[var.name] = (rank, await node.read_array_dimensions()) if rank != -1 else (rank, None)
            assert {name: dims[0] for name, (rank, dims) in shapes.items() if rank == 1} == documented
            assert all(rank in (1, -1) for rank, _ in shapes.values()), shapes


async def test_a_bad_item_is_refused_on_its_own_and_the_others_of_the_write_are_stored(opcua_server):
    from asyncua import Client, ua
    u16, u32, i32 = ua.VariantType.UInt16, ua.VariantType.UInt32, ua.VariantType.Int32
    items = [
        ("Edge", "Heartbeat", ua.Variant(55, u16), "Good"),
        ("Edge", "Assign03", ua.Variant([7, 1, 70000, 1], u32), "BadOutOfRange"),       # chute beyond UInt16
        ("Plc", "ScanSeq", ua.Variant(5, u32), "BadUserAccessDenied"),                  # the PLC's own
        ("Edge", "ScanAck", ua.Variant(5, i32), "BadTypeMismatch"),
        ("Edge", "Assign04", ua.Variant(5, u32), "BadTypeMismatch"),                    # a scalar for UInt32[4]
        ("Edge", "Assign05", ua.Variant([1, 2, 3], u32), "BadTypeMismatch"),            # three elements
        ("Edge", "ConfirmAck", ua.Variant(3, u32), "Good"),
    ]
    async with sim_plc("opcua", opcua_server) as (plc, port):
        async with Client(opcua_server.url, timeout=5) as client:
            ids = [ua.NodeId(lay.node_id(folder, name), 2) for folder, name, _, _ in items]
            # One Write request: answered item by item, not with a ServiceFault for the whole request.
            results = await client.uaclient.write_attributes(ids, [ua.DataValue(v) for _, _, v, _ in items],
                                                             ua.AttributeIds.Value)
            assert [r.name for r in results] == [want for *_, want in items]
            model, m = plc.model, plc.model.map
            assert model.regs[m.edge(rm.EDGE_HEARTBEAT)] == 55
            assert rm.join_u32(*model.regs[m.edge(rm.EDGE_CONFIRM_ACK):m.edge(rm.EDGE_CONFIRM_ACK) + 2]) == 3
            ring = m.edge(rm.EDGE_ASSIGN_RING)
            assert model.regs[ring:ring + rm.RING_SLOTS * rm.SLOT_WORDS] == [0] * (rm.RING_SLOTS * rm.SLOT_WORDS)
            assert model.regs[m.plc(rm.PLC_SCAN_SEQ):m.plc(rm.PLC_SCAN_SEQ) + 2] == [0, 0]
