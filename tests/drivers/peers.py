"""Real simulated PLCs on loopback for the link tests: the Modbus server, the OPC UA server, or both.

The OPC UA server takes ~2 s to build its address space, so one serves a whole test module
(`conftest.opcua_server`); each test gets a fresh PLC model bound to it.
"""
import asyncio
import contextlib

from drivers import LinkSettings, open_link
from drivers.link import OpcUaSettings
from sim_plc.chutes import ChuteSettings
from sim_plc.plc import SimPlc
from tests.conftest import free_port
from tests.sim_plc.helpers import GEOMETRY

PROTOCOLS = ("modbus", "opcua")


@contextlib.asynccontextmanager
async def sim_plc(protocol: str, opcua_server, heartbeat_timeout_s: float = 0.3, boot_id: int = 1,
                  chutes: ChuteSettings = ChuteSettings()):
    """A started simulated PLC speaking `protocol`; yields (plc, port)."""
    if protocol == "modbus":
        port = free_port()
        plc = SimPlc(GEOMETRY, port=port, heartbeat_timeout_s=heartbeat_timeout_s, boot_id=boot_id, chutes=chutes)
    else:
        port = opcua_server.port
        plc = SimPlc(GEOMETRY, modbus=False, heartbeat_timeout_s=heartbeat_timeout_s, boot_id=boot_id,
                     chutes=chutes)
        opcua_server.bind_model(plc.model)
        plc.add_server(opcua_server)
    async with plc:
        try:
            yield plc, port
        finally:
            await drain(plc.model)


async def drain(model, timeout_s: float = 3.0) -> None:
    """Let every parcel on the belt land, so that no timer outlives its test."""
    async with asyncio.timeout(timeout_s):
        while model.parcels and model.powered:
            await asyncio.sleep(0.02)


def settings(protocol: str, port: int, **overrides) -> LinkSettings:
    values = dict(port=port, poll_interval_s=0.002, timeout_s=0.2, heartbeat_interval_s=0.05, reconnect_max_s=0.5,
                  opcua=OpcUaSettings(path="/sorter/"))
    values.update(overrides)
    return LinkSettings(**values)


@contextlib.asynccontextmanager
async def linked(protocol: str, port: int, connect: bool = True, **overrides):
    link = open_link(protocol, settings(protocol, port, **overrides))
    await link.start()
    try:
        if connect:
            await link.wait_connected(5.0)
        yield link
    finally:
        async with asyncio.timeout(3.0):
            await link.stop()


def poke(model, address: int, values: list[int]) -> None:
    """Write PLC memory behind the PLC program's back, as a faulty program or memory would."""
    model.regs[address:address + len(values)] = values
    for watch in model.watchers:
        watch(address, len(values))


async def events_of(link, kind, timeout_s: float) -> list:
    """Every event of `kind` the link delivers within `timeout_s`."""
    out = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (left := deadline - loop.time()) > 0:
        try:
            ev = await asyncio.wait_for(link.events.get(), left)
        except TimeoutError:
            break
        if isinstance(ev, kind):
            out.append(ev)
    return out
