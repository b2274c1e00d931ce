"""A short simulated shift for any line config: the simulated PLC in its own process, the controller here.

The config is copied with its PLC port, camera folder, records folder and plan path moved to the
test's own places, so that shifts of several configs never share a port or a folder.
"""
import asyncio
import json
import sqlite3
import sys
import tomllib
from pathlib import Path

from edge.run import build_controller
from edge.config import load_config
from tests.conftest import REPO, free_port
from tests.edge.config_files import set_keys


def private_copy(config_path: Path, folder: Path, plan_path: Path | None = None, **plan_keys) -> Path:
    """The config at `config_path`, rewritten to run in `folder` on a free port."""
    config_path = Path(config_path)
    raw = tomllib.loads(config_path.read_text())
    plan = plan_path or (config_path.parent / raw["plan"]["file"]).resolve()
    values = {("plc", "port"): str(free_port()),
              ("camera", "folder"): f'"{folder / "camera"}"',
              ("records", "folder"): f'"{folder / "rec"}"',
              ("plan", "file"): f'"{plan}"',
              ("screen", "enabled"): "false"}
    values.update({("plan", k): v for k, v in plan_keys.items()})
    path = folder / config_path.name
    path.write_text(set_keys(config_path.read_text(), values))
    return path


async def run_shift(config_path: Path, parcels: int, rate_per_h: float, seed: int, during=None, *sim_args: str):
    """Run a shift; `during(controller)` runs beside it. Returns (report, records rows, controller, result)."""
    config = load_config(config_path)
    report_path = config_path.parent / "report.json"
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(config_path), "--parcels", str(parcels),
        "--rate", str(rate_per_h), "--seed", str(seed), "--report", str(report_path), *sim_args, cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    controller = build_controller(config)
    stop = asyncio.Event()
    run = asyncio.create_task(controller.run(stop))
    side = asyncio.create_task(during(controller)) if during else None
    try:
        _, err = await asyncio.wait_for(sim.communicate(), 200)
        assert sim.returncode == 0, err.decode()[-3000:]
        result = await asyncio.wait_for(side, 60) if side else None
    finally:
        if side and not side.done():
            side.cancel()
        stop.set()
        await asyncio.wait_for(run, 20)
        controller.records.close()
        if sim.returncode is None:
            sim.kill()
            await sim.wait()
    db = sqlite3.connect(config.records_folder / "parcels.sqlite")
    try:
        rows = db.execute("SELECT id, tracking, chute, reason, plan_version, destination FROM parcels "
                          "ORDER BY id").fetchall()
    finally:
        db.close()
    return json.loads(report_path.read_text()), rows, controller, result
