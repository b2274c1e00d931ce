"""A simulated PLC on loopback and a real Modbus link to it, for tests."""
import asyncio
import contextlib

from drivers import LinkSettings, ScanEvent, open_link
from sim_plc.chutes import ChuteSettings
from edge.line_geometry import Chute, LineGeometry
from sim_plc.plc import SimPlc

# A short line so that tests run fast: first diverter 0.6 m after the scan point at 2 m/s, so the
# decision point is 0.18 s after the scan and a parcel lands in the end chute 0.7 s after it.
GEOMETRY = LineGeometry(
    belt_speed_m_s=2.0, switch_time_s=0.1, plc_margin_s=0.02,
    chutes=(Chute(1, 0.6, "left"), Chute(2, 0.6, "right"), Chute(3, 1.0, "left"), Chute(4, 1.4, "end")),
    end_chute=4)


@contextlib.asynccontextmanager
async def plc_only(port: int, heartbeat_timeout_s: float = 0.3, geometry=GEOMETRY, chutes=ChuteSettings()):
    async with SimPlc(geometry, port=port, heartbeat_timeout_s=heartbeat_timeout_s, chutes=chutes) as plc:
        yield plc


@contextlib.asynccontextmanager
async def plc_and_link(port: int, heartbeat_timeout_s: float = 0.3, geometry=GEOMETRY, chutes=ChuteSettings()):
    async with plc_only(port, heartbeat_timeout_s, geometry, chutes) as plc:
        link = open_link("modbus", LinkSettings(port=port, poll_interval_s=0.002, timeout_s=0.2,
                                                heartbeat_interval_s=0.05, reconnect_max_s=0.2))
        await link.start()
        try:
            await link.wait_connected(3.0)
            yield plc, plc.model, link
        finally:
            async with asyncio.timeout(3.0):
                await link.stop()


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


async def alive(model):
    await until(model.edge_alive, 2.0)


def line_config(tmp_path, port: int):
    """The shipped county line with this test's port and folders."""
    import re

    from edge.config import load_config
    from tests.conftest import REPO
    text = (REPO / "configs" / "county-24.toml").read_text()
    text = re.sub(r"(?m)^port = \d+", f"port = {port}", text)
    text = re.sub(r'(?m)^folder = "/dev/shm/sortline-camera"', f'folder = "{tmp_path / "camera"}"', text)
    text = re.sub(r'(?m)^file = ".*"', f'file = "{REPO / "configs" / "plans" / "county-24.plan.toml"}"', text)
    text = re.sub(r'(?m)^folder = "\.\./var/records"', f'folder = "{tmp_path / "records"}"', text)
    path = tmp_path / "line.toml"
    path.write_text(text)
    return load_config(path)
