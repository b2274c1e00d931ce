"""`sortline bench vision --json`: read rate, wrong reads and latency per tier, on one core.

The benchmark parcels come from their own seed stream ([seed, tier, i]); the text model was trained
on streams from default_rng(1) and default_rng(100001), so no benchmark frame was seen in training.
Frames are rendered in chunks before timing, so rendering never counts as reading time. Each frame
is read twice, by the barcode-only reader and by the full pipeline, in the same run.

The heldout and heldout-damaged tiers set their labels in styles the text model never saw
(vision/synth/styles.py): how the reader reads a print it was not made on.

Routing codes are accepted in the shapes the labels print (3-3-2 and EMS's 3-3-2-2), as a line's
readers accept the shapes of its sort plan's codes; --any-routing-shape measures without that.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

from vision.textread import DIGIT_LOOKALIKES

DEFAULT_SEED = 20_251_128
# Letters a noisy print turns into 0: --lookalikes draws every letter outlet from them.
LOOKALIKE_LETTERS = DIGIT_LOOKALIKES["0"]
TIER_IDS = {"clean": 0, "rotated": 1, "noisy": 2, "damaged": 3, "heldout": 4, "heldout-damaged": 5}
CHUNK = 100


def _pin_one_core(core: int | None) -> int | None:
    import cv2
    cv2.setNumThreads(1)
    if core is None or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = core if core in allowed else allowed[-1]
    os.sched_setaffinity(0, {chosen})
    return chosen


def _floors(results, truths, floors) -> dict:
    """Routing codes right and wrong at or above each candidate floor (--routing-floors)."""
    table = {}
    for floor in floors:
        kept = [(r.routing_code == t.routing_code) for r, t in zip(results, truths)
                if r.routing_code is not None and r.routing_confidence >= floor]
        table[f"{floor:g}"] = {"right": sum(kept), "wrong": len(kept) - sum(kept)}
    return table


def _score(results, truths, latencies_ms, budget_ms) -> dict:
    n = len(truths)
    read = wrong = multi = none = 0
    routing_read = routing_wrong = sortable = 0
    for r, t in zip(results, truths):
        # Sortable: the waybill is right, or there is none and the routing code is right.
        sortable += r.waybills == (t.waybill,) or (not r.waybills and r.routing_code == t.routing_code)
        if r.waybills == (t.waybill,):
            read += 1
        elif len(r.waybills) > 1:
            multi += 1
        elif r.waybills:
            wrong += 1
        else:
            none += 1
        if r.routing_code == t.routing_code:
            routing_read += 1
        elif r.routing_code is not None:
            routing_wrong += 1
    lat = np.asarray(latencies_ms)
    return {
        "parcels": n,
        "read_rate": round(read / n, 5),
        "wrong_reads": wrong,
        "wrong_read_rate": round(wrong / n, 6),
        "multi_reads": multi,
        "no_reads": none,
        "routing_code_read_rate": round(routing_read / n, 5),
        "sortable_rate": round(sortable / n, 5),
        "routing_code_wrong": routing_wrong,
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "latency_ms_p99": round(float(np.percentile(lat, 99)), 2),
        "latency_ms_max": round(float(lat.max()), 2),
        "over_budget": int((lat > budget_ms).sum()),
    }


def _misreads(tier: str, results, truths) -> list[dict]:
    """Every answer that is wrong, multiple, or a wrong routing code, with what was printed."""
    rows = []
    for i, (r, t) in enumerate(zip(results, truths)):
        waybill_wrong = bool(r.waybills) and r.waybills != (t.waybill,)
        routing_wrong = r.routing_code is not None and r.routing_code != t.routing_code
        if waybill_wrong or routing_wrong:
            rows.append({"tier": tier, "index": i, "printed": [t.waybill, t.routing_code],
                         "read": [list(r.waybills), r.routing_code], "sources": r.sources,
                         "confidence": r.confidence})
    return rows


def frame(seed: int, tier: str, i: int, routing_codes=None, lookalike_letters: str | None = None):
    """(truth, image) of the benchmark's frame i of `tier`: its own seed stream [seed, tier, i]."""
    from vision.synth import random_truth, render_label
    from vision.synth.truth import random_routing_code
    rng = np.random.default_rng([seed, TIER_IDS[tier], i])
    truth = random_truth(rng, routing_codes=routing_codes)
    if lookalike_letters:
        truth = dataclasses.replace(truth, routing_code=random_routing_code(rng, truth.courier, lookalike_letters))
    return truth, render_label(truth, rng, tier)


def run_tier(tier: str, n: int, seed: int, budget_ms: float, routing_codes=None, misreads=None,
             floors=(), lookalike_letters: str | None = None) -> dict:
    from vision.pipeline import read_label
    truths, full, bonly, lat_full, lat_b = [], [], [], [], []
    render_s = 0.0
    for start in range(0, n, CHUNK):
        t0 = time.perf_counter()
        chunk = [frame(seed, tier, i, routing_codes, lookalike_letters) for i in range(start, min(n, start + CHUNK))]
        render_s += time.perf_counter() - t0
        for truth, img in chunk:
            truths.append(truth)
            t = time.perf_counter()
            bonly.append(read_label(img, budget_ms=budget_ms, use_text=False))
            lat_b.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            full.append(read_label(img, budget_ms=budget_ms))
            lat_full.append((time.perf_counter() - t) * 1000)
    if misreads is not None:
        misreads.extend(_misreads(tier, full, truths))
    report = {
        "full": _score(full, truths, lat_full, budget_ms),
        "barcode_only": _score(bonly, truths, lat_b, budget_ms),
        "render_s": round(render_s, 1),
    }
    if floors:
        report["routing_floors"] = _floors(full, truths, floors)
    return report


def _run(args, tiers, floors, shapes) -> dict:
    from vision import warm_up
    from vision.textmodel import runtime
    core = _pin_one_core(None if args.core < 0 else args.core)
    model_ok, model_msg = warm_up()
    report = {
        "benchmark": "vision", "seed": args.seed, "per_tier": args.per_tier, "budget_ms": args.budget_ms,
        "core": core, "text_model": model_msg if not model_ok else os.path.basename(runtime.model_path()),
        "frame": "1280x1024 gray",
        "routing_shapes": ["-".join(map(str, s)) for s in sorted(shapes)] if shapes else "any",
        "routing_recheck": args.routing_recheck,
        "routing_codes": f"outlet letter from {LOOKALIKE_LETTERS}" if args.lookalikes else "as printed on the line",
        "tiers": {},
    }
    started = time.perf_counter()
    misreads = [] if args.misreads else None
    for tier in tiers:
        report["tiers"][tier] = run_tier(tier, args.per_tier, args.seed, args.budget_ms, misreads=misreads,
                                         floors=floors, lookalike_letters=LOOKALIKE_LETTERS if args.lookalikes else None)
        print(f"{tier}: full {report['tiers'][tier]['full']['read_rate']:.4f}", file=sys.stderr, flush=True)
    if args.realdata:
        from vision.realdata import evaluate, realdata_dir
        root = realdata_dir()
        if root is None:
            report["realdata"] = "not found (expected ../shared/realdata/barcodes beside the repository)"
        else:
            real = evaluate(root)
            real.pop("rows")
            report["realdata"] = real
    report["wall_s"] = round(time.perf_counter() - started, 1)
    if misreads is not None:
        with open(args.misreads, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row) + "\n" for row in misreads)
        report["misreads_file"] = args.misreads
    return report


def main(argv=None) -> int:
    from vision.synth.degrade import TIERS, tier_name
    parser = argparse.ArgumentParser(prog="sortline bench vision", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON document (default: also)")
    parser.add_argument("--per-tier", type=int, default=2000, help="parcels per tier (default 2000)")
    parser.add_argument("--tiers", default=",".join(TIERS), help="comma-separated tiers")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--budget-ms", type=float, default=40.0)
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (-1: do not pin)")
    parser.add_argument("--realdata", action="store_true", help="also read the real photos if present")
    parser.add_argument("--any-routing-shape", action="store_true",
                        help="accept routing codes of any shape, as a reader without a sort plan does")
    parser.add_argument("--routing-floors", metavar="LIST",
                        help="comma-separated confidence floors to compare for routing codes (e.g. 0.9,0.95,0.97): "
                             "the run accepts codes from the lowest and counts right and wrong ones at each; "
                             "tune on another --seed than the benchmark's")
    parser.add_argument("--misreads", metavar="FILE",
                        help="write every wrong or multiple answer of the full pipeline to FILE (JSON lines)")
    parser.add_argument("--routing-recheck", choices=("on", "off"), default="on",
                        help="read each routing code again drawn wider before it is taken (default on)")
    parser.add_argument("--lookalikes", action="store_true",
                        help=f"draw each routing code's outlet letter from {LOOKALIKE_LETTERS}, the letters "
                             "a noisy print turns into 0: finds the model's confusions in fewer parcels "
                             "(not the benchmark's mix; use another --seed)")
    args = parser.parse_args(argv)
    try:
        tiers = [tier_name(t.strip()) for t in args.tiers.split(",") if t.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    if args.per_tier < 1:
        parser.error("--per-tier must be at least 1")
    try:
        floors = sorted({float(f) for f in args.routing_floors.split(",") if f.strip()}) if args.routing_floors else []
    except ValueError:
        parser.error(f"--routing-floors: {args.routing_floors!r} is not a list of numbers like 0.9,0.95,0.97")
    if any(not 0 < f <= 1 for f in floors):
        parser.error("--routing-floors: every floor must be above 0 and at most 1")

    from vision import fusion, routing_code, textread
    from vision.synth import ROUTING_SHAPES
    shapes = None if args.any_routing_shape else ROUTING_SHAPES
    floor_before, widen_before = fusion.ROUTING_MIN_CONFIDENCE, textread.RECHECK_WIDEN
    routing_code.use_routing_shapes(shapes)
    if args.routing_recheck == "off":
        textread.RECHECK_WIDEN = None
    if floors:
        # A tuning run: codes are accepted from the lowest floor studied, and counted at each.
        fusion.ROUTING_MIN_CONFIDENCE = floors[0]
    try:
        report = _run(args, tiers, floors, shapes)
    finally:
        routing_code.use_routing_shapes(None)
        fusion.ROUTING_MIN_CONFIDENCE, textread.RECHECK_WIDEN = floor_before, widen_before
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
