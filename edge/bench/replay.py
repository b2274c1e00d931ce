"""`sortline bench replay`: how long `sortline replay` takes for a day of parcel records.

    sortline bench replay --parcels 500000 --preadvice 500000

Builds a day of records first (not timed): the shipped county-24 plan with a generated
pre-advice file of `--preadvice` waybills, and `--parcels` reads as the line sees them (most
waybills in the pre-advice, some routed by the printed routing code alone, no reads, multi
reads, symbols of no courier's format), each decided by the routing core as the controller does,
with a chute full now and then, and written with the records' own schema (edge/records.py).
Then times what `sortline replay` does: reading the rows, loading the plan, checking every record
against it, and the same with a changed plan (one destination moved to another chute). Prints
one JSON object; `target_s` is the issue's bound for a day, 60 s on the line PC.
"""
import argparse
import json
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from fastpath import Router, load_plan
from fastpath.plan_file import read_plan_file
from fastpath.samples import courier_formats_of, waybill_from_masks

from ..records import INSERT_DECIDED, SCHEMA
from ..replay import DIFFERS, Decider, load_parcels, replay

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "configs" / "plans" / "county-24.plan.toml"
N_CHUTES = 24
TARGET_S = 60.0
DAY_S = 24 * 3600.0
MOVED = ("Qicun", 7, 8)          # the changed plan: this destination's chute 7 becomes chute 8


def write_plans(folder: Path, preadvice: int, seed: int) -> tuple[Path, Path, list[str]]:
    """The shipped plan with a pre-advice of its own, and the same plan with one destination moved;
    returns both paths and the pre-advice waybills."""
    spec = read_plan_file(PLAN, N_CHUTES)
    rng = random.Random(seed)
    formats = courier_formats_of(spec)
    destinations = [name for name, _, _ in spec.destinations]
    waybills: dict[str, str] = {}
    while len(waybills) < preadvice:
        _, masks, s10 = rng.choice(formats)
        waybills.setdefault(waybill_from_masks(rng, masks, s10), rng.choice(destinations))
    (folder / "day.preadvice.csv").write_text("waybill,destination\n" + "".join(
        f"{w},{d}\n" for w, d in waybills.items()), encoding="utf-8")
    text = PLAN.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^files = .*$', 'files = ["day.preadvice.csv"]', text)
    used = folder / "day.plan.toml"
    used.write_text(text.replace('version = "2026-11-28.1"', 'version = "bench-day"'), encoding="utf-8")
    name, old, new = MOVED
    moved_text = text.replace('version = "2026-11-28.1"', 'version = "bench-moved"')
    moved_text = moved_text.replace(f'[destinations."{name}"]\nchutes = [{old}]', f'[destinations."{name}"]\nchutes = [{new}]')
    assert moved_text != text.replace('version = "2026-11-28.1"', 'version = "bench-moved"'), "the plan changed shape"
    moved = folder / "moved.plan.toml"
    moved.write_text(moved_text, encoding="utf-8")
    return used, moved, list(waybills)


def write_day(db_path: Path, plan_path: Path, preadvised: list[str], parcels: int, seed: int) -> dict:
    """A day of parcel records, decided by the routing core with the plan at `plan_path`."""
    rng = random.Random(seed + 1)
    plan = load_plan(plan_path, N_CHUTES)
    router = Router(plan)
    formats = courier_formats_of(read_plan_file(plan_path, N_CHUTES))
    codes = plan.routing_codes
    start_wall = time.time() - DAY_S - 3600
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")         # made once for the measurement: no need to survive a power cut
    for statement in SCHEMA:
        db.execute(statement)
    db.execute("BEGIN")
    rows, full_until = [], -1
    for i in range(parcels):
        if i % 5000 == 0:                       # a chute full for a stretch: overflow, and the other chute of its pair
            chute = rng.choice((19, 21, 7, 3))
            router.set_chute_state(chute, full=True)
            full_until = i + rng.randint(50, 400)
        if i == full_until:
            for chute in (19, 21, 7, 3):
                router.set_chute_state(chute, full=False)
        kind = rng.random()
        sources: dict = {}
        code = None
        if kind < 0.75:
            waybills = [rng.choice(preadvised)]
            sources["waybill"] = "barcode"
            code = rng.choice(codes) if rng.random() < 0.5 else None
        elif kind < 0.92:
            _, masks, s10 = rng.choice(formats)
            waybills = [waybill_from_masks(rng, masks, s10)]
            code = rng.choice(codes) if rng.random() < 0.8 else None
            sources["waybill"] = "barcode"
        elif kind < 0.95:
            waybills = []
            sources["unknown_format"] = f"CODE128 {rng.randrange(10**11, 10**12)}"
        elif kind < 0.96:
            waybills = sorted({rng.choice(preadvised), rng.choice(preadvised)})
        else:
            waybills = []
        if code:
            sources["routing_code"] = "text"
        d = router.decide(waybills, code)
        rows.append((1, i % 65536, start_wall + i * DAY_S / parcels, i, json.dumps(waybills), code, d.courier,
                     d.destination, json.dumps(sources), None if waybills or code else "no label found", d.chute,
                     d.reason.name, plan.version, 1.0, 20.0, 0.01, 22.0))
        if len(rows) == 50_000:
            db.executemany(INSERT_DECIDED, rows)
            rows.clear()
    db.executemany(INSERT_DECIDED, rows)
    db.execute("COMMIT")
    db.close()
    return {"from_wall": start_wall, "to_wall": start_wall + DAY_S + 1}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline bench replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=500_000, help="parcels in the day of records")
    parser.add_argument("--preadvice", type=int, default=500_000, help="pre-advice records of the plan")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--pure", action="store_true", help="the pure-Python routing core instead of the compiled")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sortline-replay-bench-") as tmp:
        folder = Path(tmp)
        used_path, moved_path, preadvised = write_plans(folder, args.preadvice, args.seed)
        db_path = folder / "parcels.sqlite"
        made_mono = time.monotonic()
        span = write_day(db_path, used_path, preadvised, args.parcels, args.seed)
        made_s = time.monotonic() - made_mono
        started_cpu, started_mono = time.process_time(), time.monotonic()
        parcels = load_parcels(db_path, span["from_wall"], span["to_wall"])
        read_s = time.monotonic() - started_mono
        plan_mono = time.monotonic()
        used = {"bench-day": Decider(load_plan(used_path, N_CHUTES), pure=args.pure or None)}
        plan_s = time.monotonic() - plan_mono
        checked = replay(parcels, used)
        check_total_s = time.monotonic() - started_mono
        check_cpu_s = time.process_time() - started_cpu
        other_mono = time.monotonic()
        moved = Decider(load_plan(moved_path, N_CHUTES), pure=args.pure or None)
        used = {"bench-day": Decider(load_plan(used_path, N_CHUTES), pure=args.pure or None)}
        compared = replay(parcels, used, moved)
        other_s = time.monotonic() - other_mono + read_s
        expected = sum(1 for p in parcels if p.destination == MOVED[0] and p.reason != "COURIER_OVERRIDE")
    result = {
        "bench": "replay", "parcels": len(parcels), "preadvice": args.preadvice,
        "implementation": used["bench-day"].router.implementation, "cpus": os.cpu_count(),
        "made_s": round(made_s, 2),
        "check": {"read_rows_s": round(read_s, 2), "load_plan_s": round(plan_s, 2),
                  "decide_s": checked.elapsed_s, "total_s": round(check_total_s, 2), "cpu_s": round(check_cpu_s, 2),
                  "parcels_per_s": round(len(parcels) / check_total_s), "found": checked.check},
        "other_plan": {"total_s": round(other_s, 2), "would_change": len(compared.would_change),
                       "expected": expected, "by": compared.changes_by},
        "target_s": TARGET_S,
        "within_target": check_total_s < TARGET_S and other_s < TARGET_S,
        "records_agree": checked.check[DIFFERS] == 0 and not checked.missing_plans,
    }
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0 if result["within_target"] and result["records_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
