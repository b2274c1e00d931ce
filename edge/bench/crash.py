"""`sortline bench crash`: kill -9 the controller in the middle of a simulated shift, restart it,
and check the records against what the PLC saw.

    sortline bench crash --parcels 5000 --rate 20000 --json

Every parcel whose assignment reached the PLC must have exactly one record with that chute;
parcels in flight during the outage are rejected by the PLC on its own and recorded as such
once the controller is back.
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
from pathlib import Path

from .e2e import _feed_args, bench_config


async def _start_controller(config: Path, env: dict):
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "run", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env)


def _records(db_path: Path) -> dict:
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT tracking, chute, reason, sent, confirmed_chute, confirmed_result FROM parcels")
    out: dict = {}
    for tracking, *rest in rows:
        out.setdefault(tracking, []).append(rest)
    db.close()
    return out


async def crash_run(parcels: int, rate: float, config_base="configs/county-24.toml", seed: int = 5,
                    outage_s: float = 1.5, timeout_s: float = 1800.0) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="sortline-crash-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    config = bench_config(config_base, workdir, "modbus", None)
    report_path = workdir / "report.json"
    db_path = workdir / "records" / "parcels.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(config), "--parcels", str(parcels),
        "--rate", str(rate), "--seed", str(seed), "--report", str(report_path), *_feed_args(config, rate),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env)
    ctl = await _start_controller(config, env)
    killed_after = None
    try:
        async with asyncio.timeout(timeout_s):
            # Kill when about half of the shift has been decided.
            while killed_after is None:
                await asyncio.sleep(0.2)
                if sim.returncode is not None:
                    raise SystemExit("the shift ended before the controller could be killed: use more parcels")
                if db_path.exists():
                    try:
                        with sqlite3.connect(db_path, timeout=1) as db:
                            n = db.execute("SELECT count(*) FROM parcels WHERE sent = 1").fetchone()[0]
                    except sqlite3.Error:
                        continue
                    if n >= parcels // 2:
                        ctl.send_signal(signal.SIGKILL)
                        await ctl.wait()
                        killed_after = n
            await asyncio.sleep(outage_s)
            ctl = await _start_controller(config, env)
            await sim.wait()
            await asyncio.sleep(1.0)         # the last confirmations reach the records
    finally:
        if ctl.returncode is None:
            ctl.send_signal(signal.SIGTERM)
            await asyncio.wait_for(ctl.wait(), 15)
        if sim.returncode is None:
            sim.kill()
    try:
        report = json.loads(report_path.read_text())
        records = _records(db_path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)      # the camera images live in RAM (/dev/shm)
    assigned = [r for r in report["records"] if r["assign_ms"] is not None]
    missing = [r["tracking"] for r in assigned if r["tracking"] not in records]
    duplicated = [t for t, rows in records.items() if len(rows) > 1]
    wrong_chute = [r["tracking"] for r in assigned if r["tracking"] in records
                   and records[r["tracking"]][0][0] != r["actual"] and r["result"] == "DIVERTED"]
    rejected = [r for r in report["records"] if r["result"] != "DIVERTED"]
    rejected_unrecorded = [r["tracking"] for r in rejected
                           if r["tracking"] not in records or records[r["tracking"]][0][4] != r["result"]]
    return {
        "parcels": parcels, "rate_per_h": rate, "killed_after_decisions": killed_after, "outage_s": outage_s,
        "landed": report["landed"], "lost": report["lost"],
        "assigned_in_plc": len(assigned), "assigned_without_record": len(missing),
        "records_duplicated": len(duplicated), "record_chute_differs": len(wrong_chute),
        "duplicate_assignments_refused_by_plc": report["plc_refused"].get("refused_duplicate", 0),
        "rejected_by_plc": len(rejected), "rejected_by_reason": _count(r["result"] for r in rejected),
        "rejected_not_recorded": len(rejected_unrecorded),
        "examples": {"missing": missing[:5], "unrecorded": rejected_unrecorded[:5], "wrong_chute": wrong_chute[:5]},
    }


def _count(values) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline bench crash", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/county-24.toml")
    parser.add_argument("--parcels", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=20000.0, help="parcels per hour")
    parser.add_argument("--outage-s", type=float, default=1.5, help="time between the kill and the restart")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(crash_run(args.parcels, args.rate, args.config, outage_s=args.outage_s))
    print(json.dumps(result, indent=None if args.json else 1))
    ok = not (result["assigned_without_record"] or result["records_duplicated"] or result["rejected_not_recorded"]
              or result["record_chute_differs"] or result["lost"] or result["duplicate_assignments_refused_by_plc"])
    return 0 if ok else 1
