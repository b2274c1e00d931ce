"""Commit latency of parcel records on a disk: SQLite's own checkpoints vs the checkpoint thread.

    python -m edge.records_bench --folder /var/lib/sortline/bench --parcels 10000 --gap-ms 2 --json

Each parcel is written as the controller writes it (its decision, then "sent"), one commit each,
paced `--gap-ms` apart; both ways run one after the other in the same folder's file system. Use
the disk the records live on: in RAM (tmpfs) no fsync costs anything and both look alike.
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .records import Records

READ = SimpleNamespace(waybills=("SF1234567890123",), routing_code="571-J25-03", sources={"waybill": "barcode"},
                       no_read_reason=None)
DECISION = SimpleNamespace(courier="SF", destination="D12", chute=5, reason=SimpleNamespace(name="PREADVICE"))
TIMES = {"image_ms": 0.3, "read_ms": 12.0, "decide_ms": 0.01, "total_ms": 12.5}


def run(folder: Path, parcels: int, gap_s: float, thread: bool) -> dict:
    records = Records(folder, checkpoint_thread=thread)
    lat = np.empty(parcels)
    try:
        for i in range(parcels):
            time.sleep(gap_s)
            t = time.perf_counter()
            records.decided(plc_boot=1, tracking=i + 1, scan_seq=i + 1, read=READ, decision=DECISION,
                            plan_version="bench", times=TIMES)
            records.sent(1, i + 1)
            lat[i] = (time.perf_counter() - t) * 1000
        wal = folder / "parcels.sqlite-wal"
        wal_mb = wal.stat().st_size / 1e6 if wal.exists() else 0.0
    finally:
        records.close()
    p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
    return {"p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3), "p99_9_ms": round(float(p999), 3),
            "max_ms": round(float(lat.max()), 1), "parcels_over_5_ms": int((lat > 5).sum()),
            "log_mb_at_end": round(wal_mb, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.records_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", default="/var/tmp", help="a folder on the disk to measure (default /var/tmp)")
    parser.add_argument("--parcels", type=int, default=10000)
    parser.add_argument("--gap-ms", type=float, default=2.0, help="pause between two parcels")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.parcels < 1 or args.gap_ms < 0:
        parser.error("--parcels must be at least 1 and --gap-ms at least 0")
    base = Path(args.folder)
    if not base.is_dir():
        parser.error(f"--folder {base} is not a folder; create it or give one on the disk to measure")
    work = Path(tempfile.mkdtemp(prefix="sortline-records-bench-", dir=base))
    try:
        result = {"folder": str(base), "parcels": args.parcels, "gap_ms": args.gap_ms}
        for name, thread in (("sqlite_checkpoints_in_commits", False), ("checkpoint_thread", True)):
            folder = work / name
            result[name] = run(folder, args.parcels, args.gap_ms / 1000, thread)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
