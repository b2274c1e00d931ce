"""One simulated shift watched and operated through the line screen in headless Chromium.

The simulated PLC runs in its own process (Modbus TCP on 127.0.0.1), the controller and its
screen run here, and a node script drives Debian's chromium through playwright-core: once while
parcels flow (wrong token, login, disable a chute from the page, screenshot) and once after the
shift (what the page shows, in both languages). Every test module of tests/web reads the result.
"""
import asyncio
import contextlib
import dataclasses
import json
import shutil
import socket
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path(__file__).with_name("drive_screen.mjs")
ARTIFACTS = Path(__file__).with_name("artifacts")
TOKEN = "line1-shared-token-7d1c9e0b44"
PARCELS, RATE_PER_H, SEED = 110, 12000, 5


def browser_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (Debian: apt-get install nodejs npm; then npm ci at the repo root)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
    if not (REPO / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed: run 'npm ci' at the repo root (make browser-deps)"
    return None


@dataclass
class BrowserShift:
    config_path: Path
    records_db: Path
    chute: int                   # the chute disabled from the page
    next_chute: int              # the other chute of its destination
    destination: str
    acted: dict | None           # what the page showed and answered while parcels flowed (None: no browser)
    shown: dict | None           # what the page showed after the shift
    plc_disabled: set            # disabled chutes as the simulated PLC publishes them
    sim_report: dict
    started_wall: float
    screenshot: Path
    screenshot_after: Path

    def db(self):
        return sqlite3.connect(f"file:{self.records_db}?mode=ro", uri=True)


def busiest_two_chute_destination(plan_path: Path) -> tuple[str, int, int]:
    """The two-chute destination with the most pre-advised parcels: the shift's parcels come from those."""
    import collections
    import csv
    import tomllib
    spec = tomllib.loads(plan_path.read_text(encoding="utf-8"))
    counts = collections.Counter()
    for name in spec["preadvice"]["files"]:
        with open(plan_path.parent / name, encoding="utf-8", newline="") as f:
            counts.update(row[1].strip() for row in csv.reader(line for line in f if not line.startswith("#"))
                          if len(row) == 2 and row[0] != "waybill")
    pairs = {name: d["chutes"] for name, d in spec["destinations"].items() if len(d["chutes"]) == 2}
    destination = max(pairs, key=lambda name: counts[name])
    return destination, *pairs[destination]


async def read_plc_disabled(config) -> set[int]:
    """Ask the simulated PLC, as any Modbus client would, which chutes it holds disabled."""
    from pymodbus.client import AsyncModbusTcpClient

    from drivers import regmap as rm
    regmap = rm.RegisterMap(config["plc"]["plc_base"], config["plc"]["edge_base"])
    client = AsyncModbusTcpClient("127.0.0.1", port=config["plc"]["port"], timeout=2)
    await asyncio.wait_for(client.connect(), 5)
    try:
        rr = await client.read_holding_registers(regmap.plc(rm.PLC_CHUTE_DISABLED), count=rm.CHUTE_BIT_WORDS,
                                                 device_id=config["plc"]["unit"])
        assert not rr.isError(), rr
        return rm.chutes_from_bits(rr.registers)
    finally:
        client.close()


async def node(*args: str, timeout_s: float = 120) -> None:
    proc = await asyncio.create_subprocess_exec("node", str(DRIVER), *args, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"the browser driver took over {timeout_s:g} s:\n{(out + err).decode()[-4000:]}") from None
    assert proc.returncode == 0, (out + err).decode()[-4000:]


ALARM_SOURCE = "127.0.0.5"          # not the browser's address: its connections stay within the caps
UNKNOWN_ALARM = "conveyor_smoke"     # a key the page has no title for


async def raise_alarms(controller, screen) -> None:
    """The screen's own alarm, for real (idle connections from one address past its per-address
    cap), and one whose key the page does not know."""
    from edge.web import server
    loop = asyncio.get_running_loop()
    socks = []
    for _ in range(server.MAX_CONNECTIONS_PER_CLIENT + 3):
        sock = socket.socket()
        sock.setblocking(False)
        sock.bind((ALARM_SOURCE, 0))
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", screen.port)), 5)
        socks.append(sock)
    await asyncio.sleep(0.5)
    for sock in socks:
        sock.close()
    assert screen.refused >= 3
    controller.alarms.raise_(UNKNOWN_ALARM, "smoke detector 2 above chute 7", "check chute 7")


async def run_shift(tmp: Path, browser: bool) -> BrowserShift:
    from edge.run import build_controller
    from edge.config import load_config
    from edge.config_copy import derive_config
    from edge.web import screen_settings, start_screen

    web_port = free_port()
    (tmp / "tokens.txt").write_text(f"# shared token: the name typed at login goes into the logbook\n{TOKEN}\n")
    (tmp / "tokens.txt").chmod(0o600)
    path = derive_config(REPO / "configs" / "county-24.toml", tmp / "line.toml", {
        "plc": {"port": free_port()}, "camera": {"folder": str(tmp / "camera")},
        "records": {"folder": str(tmp / "records")}, "plan": {"watch": False},
        "screen": {"enabled": True, "bind": "127.0.0.1", "port": web_port, "token_file": str(tmp / "tokens.txt")}})
    config = load_config(path)
    destination, chute, next_chute = busiest_two_chute_destination(Path(config.plan_path))
    ARTIFACTS.mkdir(exist_ok=True)
    shot, shot_after = ARTIFACTS / "line-screen.png", ARTIFACTS / "line-screen-after-shift-en.png"
    report_json = tmp / "sim-report.json"
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(path), "--parcels", str(PARCELS),
        "--rate", str(RATE_PER_H), "--seed", str(SEED), "--report", str(report_json), cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    controller = build_controller(config)
    if getattr(controller, "alarms", None) is None:
        from edge.alarms import Alarms
        controller.alarms = Alarms()
    stop = asyncio.Event()
    run = asyncio.create_task(controller.run(stop))
    screen = await start_screen(controller, screen_settings(config))
    url = f"http://127.0.0.1:{screen.port}/"
    try:
        if browser:
            await node("act", url, TOKEN, str(chute), str(shot), str(tmp / "act.json"))
        await controller.link.wait_connected(60.0)      # without a browser, the simulator may still be starting
        plc_disabled = await read_plc_disabled(config)
        _, err = await asyncio.wait_for(sim.communicate(), 150)
        assert sim.returncode == 0, err.decode()[-3000:]
        if browser:
            await raise_alarms(controller, screen)
            await node("check", url, str(shot_after), str(tmp / "check.json"))
    finally:
        if sim.returncode is None:
            sim.kill()
            await sim.wait()
        stop.set()
        await asyncio.wait_for(run, 15)
        await screen.stop()
        controller.records.close()
    seen = [json.loads((tmp / name).read_text()) if browser else None for name in ("act.json", "check.json")]
    return BrowserShift(path, tmp / "records" / "parcels.sqlite", chute, next_chute, destination, *seen,
                        plc_disabled, json.loads(report_json.read_text()), controller.started_wall, shot, shot_after)


@pytest.fixture(scope="package")
def simulated_shift(tmp_path_factory) -> BrowserShift:
    """The shift runs with or without a browser: its records feed the shift report tests too."""
    return asyncio.run(run_shift(tmp_path_factory.mktemp("shift"), browser=browser_missing() is None))


@pytest.fixture
def browser_shift(simulated_shift) -> BrowserShift:
    why = browser_missing()
    if why:
        pytest.skip(f"no headless browser test: {why}")
    return simulated_shift


@contextlib.asynccontextmanager
async def running_line(tmp_path: Path, tokens: str, **screen_changes):
    """A controller linked to a simulated PLC on 127.0.0.1 and its screen; its loop does not sort.

    `screen_changes` replace fields of the screen's settings (bind, allowed_hosts, ...). Yields
    (controller, the PLC's model, screen, plans folder).
    """
    from drivers.regmap import RegisterMap
    from edge.run import build_controller
    from edge.config import load_config
    from edge.config_copy import derive_config
    from edge.web import screen_settings, start_screen
    from sim_plc.plc import SimPlc
    plans = tmp_path / "plans"
    shutil.copytree(REPO / "configs" / "plans", plans)
    token_file = tmp_path / "tokens.txt"
    token_file.write_text(tokens)
    token_file.chmod(0o600)
    path = derive_config(REPO / "configs" / "county-24.toml", tmp_path / "line.toml", {
        "plc": {"port": free_port()}, "camera": {"folder": str(tmp_path / "camera")},
        "records": {"folder": str(tmp_path / "records")},
        "plan": {"file": str(plans / "county-24.plan.toml"), "watch": False},
        "screen": {"port": free_port(), "token_file": str(token_file)}})
    config = load_config(path)
    plc_cfg = config["plc"]
    plc = SimPlc(config.geometry, port=plc_cfg["port"],
                 regmap=RegisterMap(plc_cfg["plc_base"], plc_cfg["edge_base"]))
    await plc.start()
    controller = screen = None
    try:
        controller = build_controller(config)
        await controller.link.start()
        await controller.link.wait_connected(5.0)
        settings = dataclasses.replace(screen_settings(config), **screen_changes)
        screen = await start_screen(controller, settings)
        yield controller, plc.model, screen, plans
    finally:
        # One bound over the whole teardown: a step that never ends fails here, with its stack,
        # instead of holding the test run.
        async with asyncio.timeout(20):
            if screen is not None:
                await screen.stop()
            if controller is not None:
                await controller.link.stop()
                controller.records.close()
            await plc.stop()
