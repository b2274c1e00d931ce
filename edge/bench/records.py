"""Commit latency of parcel records on a disk: SQLite's own checkpoints vs the checkpoint thread.

    python -m edge.bench.records --folder /var/lib/sortline/bench --parcels 10000 --gap-ms 2 --json

Each parcel is recorded as the controller records it, on an event loop: its decision (whose
future says when the row is committed: the controller waits for that before sending the
assignment), then "sent", paced `--gap-ms` apart; both ways run one after the other in the same
folder's file system. `commit_*` is the time from the decision to its commit; `call_max_ms` is
the longest any call held the event loop. With `--hold-lock-s S`, another process holds the
database's write lock for S seconds in the middle of the run (a database browser, a backup):
the calls still return at once and the rows land once it lets go. Use the disk the records live
on: in RAM (tmpfs) no fsync costs anything and both look alike.
"""
import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ..records import Records

READ = SimpleNamespace(waybills=("SF1234567890123",), routing_code="571-J25-03", sources={"waybill": "barcode"},
                       no_read_reason=None)
DECISION = SimpleNamespace(courier="SF", destination="D12", chute=5, reason=SimpleNamespace(name="PREADVICE"))
TIMES = {"image_ms": 0.3, "read_ms": 12.0, "decide_ms": 0.01, "total_ms": 12.5}
HOLD_LOCK = ("import sqlite3, sys, time\n"
             "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
             "db.execute('BEGIN IMMEDIATE')\n"
             "print('locked', flush=True)\n"
             "time.sleep(float(sys.argv[2]))\n"
             "db.execute('COMMIT')\n")


def _hold_lock(db_path: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db_path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    return holder


async def _record_parcels(records: Records, parcels: int, gap_s: float, hold_lock_s: float) -> dict:
    commit_ms = np.full(parcels, np.nan)
    call_max_s = 0.0
    holder = None
    waits = []
    loop = asyncio.get_running_loop()

    async def committed(i: int, future: asyncio.Future, started: float) -> None:
        if await future:
            commit_ms[i] = (loop.time() - started) * 1000

    for i in range(parcels):
        await asyncio.sleep(gap_s)
        if hold_lock_s and i == parcels // 2:
            holder = await asyncio.to_thread(_hold_lock, records.path, hold_lock_s)
        started = loop.time()
        future = records.decided(plc_boot=1, tracking=i + 1, scan_seq=i + 1, read=READ, decision=DECISION,
                                 plan_version="bench", times=TIMES)
        records.sent(1, i + 1)
        call_max_s = max(call_max_s, loop.time() - started)
        waits.append(asyncio.ensure_future(committed(i, future, started)))
    await asyncio.gather(*waits)
    if holder is not None:
        await asyncio.to_thread(holder.wait)
    return {"commit_ms": commit_ms, "call_max_ms": call_max_s * 1000}


def run(folder: Path, parcels: int, gap_s: float, thread: bool, hold_lock_s: float = 0.0) -> dict:
    records = Records(folder, checkpoint_thread=thread)
    try:
        measured = asyncio.run(_record_parcels(records, parcels, gap_s, hold_lock_s))
        drained = records.flush(wait_s=max(30.0, hold_lock_s * 2))
        wal = folder / "parcels.sqlite-wal"
        wal_mb = wal.stat().st_size / 1e6 if wal.exists() else 0.0
    finally:
        records.close()
    lat = measured["commit_ms"]
    done = lat[~np.isnan(lat)]
    p50, p99, p999 = np.percentile(done, [50, 99, 99.9]) if done.size else (np.nan,) * 3
    return {"commit_p50_ms": round(float(p50), 3), "commit_p99_ms": round(float(p99), 3),
            "commit_p99_9_ms": round(float(p999), 3), "commit_max_ms": round(float(done.max()), 1) if done.size
            else None, "parcels_over_5_ms": int((done > 5).sum()),
            "parked_while_refused": int(np.isnan(lat).sum()), "all_written_at_end": drained,
            "call_max_ms": round(measured["call_max_ms"], 3), "log_mb_at_end": round(wal_mb, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.bench.records", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default="/var/tmp", help="a folder on the disk to measure (default /var/tmp)")
    parser.add_argument("--parcels", type=int, default=10000)
    parser.add_argument("--gap-ms", type=float, default=2.0, help="pause between two parcels")
    parser.add_argument("--hold-lock-s", type=float, default=0.0,
                        help="another process holds the write lock this long mid-run (default: never)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.parcels < 1 or args.gap_ms < 0 or args.hold_lock_s < 0:
        parser.error("--parcels must be at least 1, --gap-ms and --hold-lock-s at least 0")
    base = Path(args.folder)
    if not base.is_dir():
        parser.error(f"--folder {base} is not a folder; create it or give one on the disk to measure")
    work = Path(tempfile.mkdtemp(prefix="sortline-records-bench-", dir=base))
    try:
        result = {"folder": str(base), "parcels": args.parcels, "gap_ms": args.gap_ms,
                  "hold_lock_s": args.hold_lock_s}
        for name, thread in (("sqlite_checkpoints_in_commits", False), ("checkpoint_thread", True)):
            started = time.monotonic()
            result[name] = run(work / name, args.parcels, args.gap_ms / 1000, thread, args.hold_lock_s)
            result[name]["run_s"] = round(time.monotonic() - started, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
