"""A short simulated shift for any line config: the simulated PLC in its own process, the controller here.

The config is copied with its PLC port, camera folder, records folder and plan path moved to the
test's own places, so that shifts of several configs never share a port or a folder.
"""
import asyncio
import json
import sqlite3
import sys
import time
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


class LinkOutages:
    """When the controller's PLC link was down, as it saw it (a PLC that did not answer in time is
    dropped and reconnected), on time.monotonic: the clock of the simulator's `scan_s` too.

    A simulated PLC shares the machine with everything else; when it does not answer within the
    link's timeout the controller reconnects, with an alarm, and the parcels whose decision points
    fall in that moment go to the end chute, as on a real line. Those are the PLC's, not the
    controller's: a test counts lateness outside these windows, as the soak does with its faults."""
    SAMPLE_S = 0.005
    AFTER_S = 1.0          # a reconnect's first polls and heartbeat check

    def __init__(self, budget_s: float):
        self.budget_s = budget_s
        self.windows: list[tuple[float, float]] = []

    async def watch(self, controller) -> None:
        down = None
        while True:
            connected = controller.link.status.connected
            now = time.monotonic()
            if not connected and down is None and controller.stats.decided:
                down = now
            elif connected and down is not None:
                self.windows.append((down, now))
                down = None
            await asyncio.sleep(self.SAMPLE_S)

    def explains(self, record: dict) -> bool:
        """The parcel's time from scan to decision point overlaps an outage."""
        scan = record["scan_s"]
        return any(scan <= up + self.AFTER_S and down <= scan + self.budget_s for down, up in self.windows)

    def parcels_within(self, report: dict) -> int:
        """Parcels whose way from scan to decision point met an outage (the controller may see their
        scans only after it, past their decision points)."""
        return sum(1 for r in report["records"] if self.explains(r))

    def late_outside(self, report: dict) -> list[dict]:
        """The late parcels no outage explains, with what a reader of a failure needs."""
        late = [r for r in report["records"] if r["result"] in ("LATE", "NO_HEARTBEAT")]
        return [{k: r.get(k) for k in ("tracking", "scan_s", "result", "assign_ms", "why")}
                for r in late if not self.explains(r)]


async def run_shift(config_path: Path, parcels: int, rate_per_h: float, seed: int, during=None, *sim_args: str,
                    limit_s: float = 200, outages: LinkOutages | None = None):
    """Run a shift; `during(controller)` runs beside it; `outages` is filled while it runs.
    Returns (report, records rows, controller, result)."""
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
    watch = asyncio.create_task(outages.watch(controller)) if outages is not None else None
    try:
        _, err = await asyncio.wait_for(sim.communicate(), limit_s)
        assert sim.returncode == 0, err.decode()[-3000:]
        result = await asyncio.wait_for(side, 60) if side else None
    finally:
        for task in (side, watch):
            if task and not task.done():
                task.cancel()
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
