"""Routing benchmark: compiled and pure cores on the same generated plan, in the same run.

    python -m fastpath.bench --json                  # 80 chutes, 2,000 rules, 10,000,000 records
    python -m fastpath.bench --json --records 200000 # quick run

Prints decisions/s and ns per decision (p50/p99/p99.9, one at a time from Python, timer
included), batch decisions/s, bytes per pre-advice record, plan build time and the longest
gap between two decisions while a new plan is built in a thread and swapped in.
"""
import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

from . import bench_data
from .router import Router

TARGETS = {"compiled_over_pure": 30.0, "batch_decisions_per_s": 3_000_000, "single_p99_ns": 2000,
           "bytes_per_record": 32, "build_10m_s": 10.0, "swap_pause_ms": 1.0}


def _latencies(decide, parcels):
    clock = time.perf_counter_ns
    out = [0] * len(parcels)
    i = 0
    start = clock()
    for reads, code in parcels:
        decide(reads, code)
        now = clock()
        out[i] = now - start
        start = now
        i += 1
    return np.array(out, np.int64)


def _noop(reads, code):
    return None


def _throughput(decide, parcels):
    start = time.perf_counter()
    for reads, code in parcels:
        decide(reads, code)
    return len(parcels) / (time.perf_counter() - start)


def _single(router, parcels):
    router.decide([], None)
    rate = _throughput(router.decide, parcels)
    ns = _latencies(router.decide, parcels)
    return {"decisions_per_s": round(rate), "ns_p50": int(np.percentile(ns, 50)),
            "ns_p99": int(np.percentile(ns, 99)), "ns_p999": int(np.percentile(ns, 99.9)), "decisions": len(parcels)}


def _harness(parcels):
    """The loop and timer alone (a no-op in place of decide): included in every figure above."""
    ns = _latencies(_noop, parcels)
    return {"ns_p50": int(np.percentile(ns, 50)), "ns_p99": int(np.percentile(ns, 99))}


def _batch(router, parcels):
    reads = [r[0] if len(r) == 1 else (None if not r else r) for r, _ in parcels]
    codes = [c for _, c in parcels]
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        router.decide_batch(reads, codes)
        best = max(best, len(parcels) / (time.perf_counter() - start))
    return {"decisions_per_s": round(best), "decisions": len(parcels), "best_of": 3}


async def _decide_until(router, done, gaps):
    """Decide continuously on the event loop, yielding after every few parcels, until `done`;
    appends the gaps between consecutive decisions (ns)."""
    parcels = [(["SF1234567890123"], "311-J01-05"), ([], "312-J02-20"), (["7312345678901"], None)] * 7
    clock = time.perf_counter_ns
    found = []
    while not done.is_set():
        last = clock()
        for reads, code in parcels:
            router.decide(reads, code)
            now = clock()
            found.append(now - last)
            last = now
        await asyncio.sleep(0)
    gaps.append(np.array(found, np.int64))


def _gap_summary(ns, seconds):
    return {"decisions": len(ns), "longest_gap_ms": round(int(ns.max()) / 1e6, 3),
            "gap_p999_us": round(float(np.percentile(ns, 99.9)) / 1e3, 1),
            "gaps_over_1ms_per_s": round(int((ns > 1_000_000).sum()) / max(seconds, 1e-9), 1)}


async def _swap_pause(router, build):
    """Gaps between decisions on the event loop while `build` runs in a thread and its plan is
    swapped in; then the same loop with nothing else of ours running, for as long (at most 10 s),
    which shows what the machine alone costs; then the duration of the swap call itself."""
    done, gaps = asyncio.Event(), []
    worker = asyncio.create_task(_decide_until(router, done, gaps))
    start = time.perf_counter()
    try:
        await router.build_and_swap(build, timeout_s=600)
    finally:
        built_s = time.perf_counter() - start
        done.set()
        await asyncio.wait_for(worker, 5)
    quiet = asyncio.Event()
    worker = asyncio.create_task(_decide_until(router, quiet, gaps))
    await asyncio.sleep(min(built_s, 10.0))
    quiet.set()
    await asyncio.wait_for(worker, 5)
    swap_start = time.perf_counter_ns()
    router.swap(router.plan)
    swap_ns = time.perf_counter_ns() - swap_start
    during, idle = gaps
    return {"during_build": _gap_summary(during, built_s), "idle": _gap_summary(idle, min(built_s, 10.0)),
            "idle_window_s": round(min(built_s, 10.0), 2), "build_in_thread_s": round(built_s, 2),
            "swap_call_ms": round(swap_ns / 1e6, 3)}


def run(args):
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    work = bench_data.make_workload(args.seed, args.chutes, args.rules, args.records)
    generate_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        plan_path = os.path.join(tmp, "bench.plan.toml")
        with open(plan_path, "w", encoding="utf-8") as f:
            f.write(work.plan_text)
        t = time.perf_counter()
        plan = bench_data.build_plan(plan_path, args.chutes, work.keys, work.destinations)
        build_s = time.perf_counter() - t
        parcels = bench_data.make_parcels(rng, work, args.decisions)
        compiled = Router(plan, pure=False)
        pure = Router(plan, pure=True)
        if compiled.implementation != "compiled":
            raise SystemExit("fastpath.bench: the compiled core is not built: .venv/bin/python setup.py build_ext --inplace")
        pure_parcels = parcels[:args.pure_decisions]
        agree = _agree(plan, pure_parcels)
        result_compiled = _single(compiled, parcels)
        result_batch = _batch(compiled, parcels)
        result_pure = _single(pure, pure_parcels)
        result_pure_batch = _batch(pure, pure_parcels)
        harness = _harness(parcels)
        build = lambda: bench_data.build_plan(plan_path, args.chutes, work.keys, work.destinations)  # noqa: E731
        swap = asyncio.run(_swap_pause(compiled, build))
        from_csv = _from_csv(tmp, work, args) if args.csv else None
    table_bytes = plan.preadvice.table.nbytes
    report = {
        "command": "python -m fastpath.bench " + " ".join(args.argv),
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "load_average_1min": round(os.getloadavg()[0], 2)},
        "plan": {"chutes": args.chutes, "route_rules": args.rules, "destinations": len(plan.destinations),
                 "preadvice_records": plan.preadvice_count, "generate_records_s": round(generate_s, 2)},
        "build": {"plan_with_preadvice_s": round(build_s, 2), "table_bytes": table_bytes,
                  "bytes_per_record": round(table_bytes / max(1, plan.preadvice_count), 2),
                  "table_load": round(plan.preadvice.table.count / len(plan.preadvice.table.keys), 3)},
        "compiled": {"single": result_compiled, "batch": result_batch},
        "pure": {"single": result_pure, "batch": result_pure_batch},
        "harness_loop_and_timer": harness,
        "ratio": {
            "single_p50_pure_over_compiled": round(result_pure["ns_p50"] / result_compiled["ns_p50"], 1),
            "single_p50_net_of_harness": round((result_pure["ns_p50"] - harness["ns_p50"])
                                               / max(1, result_compiled["ns_p50"] - harness["ns_p50"]), 1),
            "batch_compiled_over_batch_pure": round(result_batch["decisions_per_s"]
                                                    / result_pure_batch["decisions_per_s"], 1),
        },
        "swap": swap,
        "plan_from_csv": from_csv,
        "compiled_and_pure_agree": agree,
    }
    report["targets_met"] = {
        "compiled_over_pure": report["ratio"]["batch_compiled_over_batch_pure"] >= TARGETS["compiled_over_pure"],
        "batch_decisions_per_s": result_batch["decisions_per_s"] >= TARGETS["batch_decisions_per_s"],
        "single_p99_ns": result_compiled["ns_p99"] <= TARGETS["single_p99_ns"],
        "bytes_per_record": report["build"]["bytes_per_record"] <= TARGETS["bytes_per_record"],
        "build_s": build_s < TARGETS["build_10m_s"] * max(1.0, args.records / 10_000_000),
        "swap_pause_ms": max(swap["during_build"]["longest_gap_ms"], swap["swap_call_ms"]) <= TARGETS["swap_pause_ms"],
    }
    return report


def _from_csv(tmp, work, args):
    """load_plan on the same records written as a pre-advice file: scan, check and table."""
    from .plan import load_plan
    csv_path = os.path.join(tmp, "bench.preadvice.csv")
    start = time.perf_counter()
    bench_data.write_csv(csv_path, work.keys, work.destinations)
    written_s = time.perf_counter() - start
    plan_path = os.path.join(tmp, "bench-csv.plan.toml")
    with open(plan_path, "w", encoding="utf-8") as f:
        f.write(bench_data.plan_text_with_preadvice(work.plan_text, "bench.preadvice.csv"))
    start = time.perf_counter()
    plan = load_plan(plan_path, args.chutes)
    load_s = time.perf_counter() - start
    return {"csv_bytes": os.path.getsize(csv_path), "write_csv_s": round(written_s, 2),
            "load_plan_s": round(load_s, 2), "preadvice_records": plan.preadvice_count,
            "warnings": plan.warnings}


def _agree(plan, parcels):
    """Same decisions from both cores over the same stream (fresh routers, same order)."""
    compiled, pure = Router(plan, pure=False), Router(plan, pure=True)
    return all(compiled.decide(r, c) == pure.decide(r, c) for r, c in parcels)


def _cpu():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m fastpath.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--records", type=int, default=10_000_000, help="pre-advice records (default 10,000,000)")
    parser.add_argument("--chutes", type=int, default=80)
    parser.add_argument("--rules", type=int, default=2000, help="routing-code rules (multiple of 10)")
    parser.add_argument("--decisions", type=int, default=300_000, help="parcels decided by the compiled core")
    parser.add_argument("--pure-decisions", type=int, default=20_000, help="parcels decided by the pure core")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--csv", action="store_true",
                        help="also load the records from a pre-advice file (written to a temp dir first)")
    args = parser.parse_args(argv)
    if args.chutes < 80 or args.rules < 10 or args.records < 1 or args.decisions < args.pure_decisions:
        parser.error("needs --chutes >= 80, --rules >= 10, --records >= 1, --decisions >= --pure-decisions")
    args.argv = argv
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        c, p, b = report["compiled"]["single"], report["pure"]["single"], report["compiled"]["batch"]
        print(f"compiled: {c['decisions_per_s']:,}/s one at a time (p50 {c['ns_p50']} ns, p99 {c['ns_p99']} ns, "
              f"p99.9 {c['ns_p999']} ns), batch {b['decisions_per_s']:,}/s")
        print(f"pure:     {p['decisions_per_s']:,}/s (p50 {p['ns_p50']} ns); "
              f"ratio {report['ratio']['batch_compiled_over_batch_pure']}x (batch), "
              f"{report['ratio']['single_p50_pure_over_compiled']}x (one at a time, p50)")
        print(f"build {report['build']['plan_with_preadvice_s']} s, {report['build']['bytes_per_record']} bytes/record, "
              f"reload: longest gap {report['swap']['during_build']['longest_gap_ms']} ms "
              f"(idle {report['swap']['idle']['longest_gap_ms']} ms), swap call {report['swap']['swap_call_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
