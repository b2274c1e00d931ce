"""One short shift through every real piece: simulated PLC process, Modbus TCP, camera folder,
label reading, the routing core, assignments and the PLC's own account of where parcels went."""
import asyncio
import json
import sqlite3
import sys

import pytest

from edge.run import build_controller
from edge.config import load_config
from edge.config_copy import derive_config
from tests.conftest import REPO, free_port

pytestmark = pytest.mark.timeout(240)


def line_config(tmp_path, port: int):
    return derive_config(REPO / "configs" / "county-24.toml", tmp_path / "line.toml", {
        "plc": {"port": port}, "camera": {"folder": str(tmp_path / "camera")},
        "records": {"folder": str(tmp_path / "records")}, "plan": {"watch": False}, "screen": {"enabled": False}})


async def one_shift(tmp_path, parcels: int, rate: float, seed: int, *extra: str) -> tuple[dict, list]:
    path = line_config(tmp_path, free_port())
    report = tmp_path / "report.json"
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(path), "--parcels", str(parcels),
        "--rate", str(rate), "--seed", str(seed), "--report", str(report), *extra, cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    controller = build_controller(load_config(path))
    stop = asyncio.Event()
    run = asyncio.create_task(controller.run(stop))
    try:
        _, err = await asyncio.wait_for(sim.communicate(), 200)
    finally:
        stop.set()
        await asyncio.wait_for(run, 10)
        controller.records.close()
    assert sim.returncode == 0, err.decode()[-3000:]
    db = sqlite3.connect(tmp_path / "records" / "parcels.sqlite")
    rows = db.execute("SELECT tracking, chute, reason, sent, confirmed_chute, no_read_reason, image_ms, read_ms, total_ms FROM parcels").fetchall()
    return json.loads(report.read_text()), rows


async def test_a_short_shift_sorts_every_parcel_and_accounts_for_it(tmp_path):
    report, rows = await one_shift(tmp_path, parcels=80, rate=12000, seed=7)
    assert report["lost"] == 0 and report["landed"] == 80
    assert report["late"] == 0, report["by_reason"]
    assert report["clean_accuracy"] >= 0.99, [(r, [x for x in rows if x[0] == r["tracking"]]) for r in report["records"] if not r["correct"]]
    # The controller recorded one row per parcel, each sent and each confirmed where the PLC said.
    by_tracking = {r[0]: r for r in rows}
    assert len(by_tracking) == 80
    for rec in report["records"]:
        tracking, chute, reason, sent, confirmed = by_tracking[rec["tracking"]][:5]
        assert sent == 1 and confirmed == rec["actual"]
        assert rec["reason"] == reason


async def test_unreadable_and_unroutable_parcels_go_to_their_configured_chutes(tmp_path):
    from fastpath import load_plan
    plan = load_plan(REPO / "configs" / "plans" / "county-24.plan.toml", n_chutes=24)
    report, _ = await one_shift(tmp_path, 60, 12000, 11, "--no-label-share", "0.1",
                                 "--unknown-route-share", "0.3")
    no_label = [r for r in report["records"] if r["tier"] == "no-label"]
    no_rule = [r for r in report["records"] if r["reason"] == "NO_RULE"]
    assert no_label and no_rule, report["by_reason"]
    assert all(r["actual"] == plan.special["no_read"] and r["reason"] == "NO_READ" for r in no_label)
    assert all(r["actual"] == plan.special["no_rule"] for r in no_rule)
