"""A simulated PLC on loopback and a real Modbus link to it, for tests."""
import asyncio
import contextlib

from drivers import LinkSettings, ScanEvent, open_link
from sim_plc.geometry import Chute, LineGeometry
from sim_plc.model import PlcModel
from sim_plc.modbus_server import ModbusPlcServer

# A short line so that tests run fast: first diverter 0.6 m after the scan point at 2 m/s.
GEOMETRY = LineGeometry(
    belt_speed_m_s=2.0, switch_time_s=0.1, plc_margin_s=0.02,
    chutes=(Chute(1, 0.6, "left"), Chute(2, 0.6, "right"), Chute(3, 1.0, "left"), Chute(4, 1.4, "end")),
    end_chute=4)


@contextlib.asynccontextmanager
async def plc_and_link(port: int, heartbeat_timeout_s: float = 0.3, geometry=GEOMETRY):
    server = ModbusPlcServer("127.0.0.1", port)
    await server.start()
    model = PlcModel(geometry, server.registers, server.map, heartbeat_timeout_s=heartbeat_timeout_s)
    server.bind_model(model.on_edge_write)
    model.start()
    link = open_link("modbus", LinkSettings(port=port, poll_interval_s=0.002, timeout_s=0.2,
                                            heartbeat_interval_s=0.05))
    await link.start()
    try:
        await link.wait_connected(3.0)
        yield server, model, link
    finally:
        await link.stop()
        await model.stop()
        await server.stop()


async def next_event(link, kind=ScanEvent, timeout_s: float = 1.0):
    async with asyncio.timeout(timeout_s):
        while True:
            ev = await link.events.get()
            if isinstance(ev, kind):
                return ev


async def until(predicate, timeout_s: float = 2.0):
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.005)
