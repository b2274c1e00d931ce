"""Routing benchmark: compiled and pure cores on the same generated plan, in the same run.

    python -m fastpath.bench.routing --json                   # 80 chutes, 2,000 rules, 10,000,000 records
    python -m fastpath.bench.routing --json --records 200000  # quick run
    python -m fastpath.bench.routing --json --parts reload    # only the reloads (5 per way of building)

Part "decide": decisions/s and ns per decision (p50/p99/p99.9, one at a time from Python, timer
included), batch decisions/s. Part "reload": the plan with its records written as a pre-advice
file and reloaded several times while a loop decides parcels, built in a child process and in
a thread, with how long the loop was held up against an idle baseline (fastpath/bench/reload.py). Both:
bytes per pre-advice record and plan build time.
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

from ..plan import load_plan
from ..router import Router
from . import data as bench_data
from . import reload as bench_reload

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


def _call_latencies(decide, parcels):
    """Each call timed on its own, the clock read just before and just after it."""
    clock = time.perf_counter_ns
    out = [0] * len(parcels)
    i = 0
    for reads, code in parcels:
        start = clock()
        decide(reads, code)
        out[i] = clock() - start
        i += 1
    return np.array(out, np.int64)


def _noop(reads, code):
    return None


def _throughput(decide, parcels):
    start = time.perf_counter()
    for reads, code in parcels:
        decide(reads, code)
    return len(parcels) / (time.perf_counter() - start)


def _percentiles(ns):
    return {"ns_p50": int(np.percentile(ns, 50)), "ns_p99": int(np.percentile(ns, 99)),
            "ns_p999": int(np.percentile(ns, 99.9))}


def _single(router, parcels):
    """One call at a time from a Python loop: the rate, each call timed on its own (the clock's
    cost included), then call-to-call times (the loop's cost included too). Each pass meets
    the parcels' objects after the previous one: no pass is colder than the other."""
    router.decide([], None)
    rate = _throughput(router.decide, parcels)
    call = _call_latencies(router.decide, parcels)
    loop = _latencies(router.decide, parcels)
    return {"decisions_per_s": round(rate), **_percentiles(call), "decisions": len(parcels),
            "with_loop": _percentiles(loop)}


def _harness(parcels):
    """A no-op in place of decide, timed both ways: what the clock (and the loop) add above."""
    return {**_percentiles(_call_latencies(_noop, parcels)), "with_loop": _percentiles(_latencies(_noop, parcels))}


def _batch(router, parcels):
    reads = [r[0] if len(r) == 1 else (None if not r else r) for r, _ in parcels]
    codes = [c for _, c in parcels]
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        router.decide_batch(reads, codes)
        best = max(best, len(parcels) / (time.perf_counter() - start))
    return {"decisions_per_s": round(best), "decisions": len(parcels), "best_of": 3}


def _cpu_times():
    """(steal, total) jiffies of all CPUs from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def _steal_share(before, after):
    """Share of CPU time the host gave to others between two _cpu_times() readings."""
    if before is None or after is None or after[1] == before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)


def run(args):
    cpu_before = _cpu_times()
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    work = bench_data.make_workload(args.seed, args.chutes, args.rules, args.records)
    generate_s = time.perf_counter() - t
    report = {"command": "python -m fastpath.bench.routing " + " ".join(args.argv)}
    with tempfile.TemporaryDirectory() as tmp:
        plan_path = os.path.join(tmp, "bench.plan.toml")
        with open(plan_path, "w", encoding="utf-8") as f:
            f.write(work.plan_text)
        t = time.perf_counter()
        plan = bench_data.build_plan(plan_path, args.chutes, work.keys, work.destinations)
        build_s = time.perf_counter() - t
        table_bytes = plan.preadvice.table.nbytes
        report["plan"] = {"chutes": args.chutes, "route_rules": args.rules, "destinations": len(plan.destinations),
                          "preadvice_records": plan.preadvice_count, "generate_records_s": round(generate_s, 2)}
        report["build"] = {"plan_with_preadvice_s": round(build_s, 2), "table_bytes": table_bytes,
                           "bytes_per_record": round(table_bytes / max(1, plan.preadvice_count), 2),
                           "table_load": round(plan.preadvice.table.count / len(plan.preadvice.table.keys), 3)}
        if "decide" in args.parts:
            report.update(_decide(args, rng, work, plan))
        if "reload" in args.parts or args.csv:
            csv_plan_path, csv_info = _write_csv(tmp, work)
            if args.csv:
                report["plan_from_csv"] = {**csv_info, **_from_csv(csv_plan_path, args)}
            if "reload" in args.parts:
                router = Router(plan, pure=False)
                del plan                # the router holds the only reference: swaps free the old plans
                report["reload"] = {"csv_bytes": csv_info["csv_bytes"],
                                    **bench_reload.run(router, csv_plan_path, args.chutes, args.reloads,
                                                       args.reload_modes)}
    report["machine"] = {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                         "load_average_1min": round(os.getloadavg()[0], 2),
                         "steal_share": _steal_share(cpu_before, _cpu_times())}
    report["targets_met"] = _targets(report, build_s, args)
    return report


def _decide(args, rng, work, plan):
    parcels = bench_data.make_parcels(rng, work, args.decisions)
    compiled = Router(plan, pure=False)
    pure = Router(plan, pure=True)
    if compiled.implementation != "compiled":
        raise SystemExit("fastpath.bench.routing: the compiled core is not built: "
                         ".venv/bin/python setup.py build_ext --inplace")
    pure_parcels = parcels[:args.pure_decisions]
    agree = _agree(plan, pure_parcels)
    result_compiled = _single(compiled, parcels)
    result_batch = _batch(compiled, parcels)
    result_pure = _single(pure, pure_parcels)
    result_pure_batch = _batch(pure, pure_parcels)
    harness = _harness(parcels)
    return {
        "compiled": {"single": result_compiled, "batch": result_batch},
        "pure": {"single": result_pure, "batch": result_pure_batch},
        "noop_harness": harness,
        "ratio": {
            "single_p50_pure_over_compiled": round(result_pure["ns_p50"] / result_compiled["ns_p50"], 1),
            "single_p50_net_of_harness": round((result_pure["ns_p50"] - harness["ns_p50"])
                                               / max(1, result_compiled["ns_p50"] - harness["ns_p50"]), 1),
            "batch_compiled_over_batch_pure": round(result_batch["decisions_per_s"]
                                                    / result_pure_batch["decisions_per_s"], 1),
        },
        "compiled_and_pure_agree": agree,
    }


def _targets(report, build_s, args):
    met = {"bytes_per_record": report["build"]["bytes_per_record"] <= TARGETS["bytes_per_record"],
           "build_s": build_s < TARGETS["build_10m_s"] * max(1.0, args.records / 10_000_000)}
    if "compiled" in report:
        met["compiled_over_pure"] = report["ratio"]["batch_compiled_over_batch_pure"] >= TARGETS["compiled_over_pure"]
        met["batch_decisions_per_s"] = report["compiled"]["batch"]["decisions_per_s"] >= TARGETS["batch_decisions_per_s"]
        met["single_p99_ns"] = report["compiled"]["single"]["ns_p99"] <= TARGETS["single_p99_ns"]
    reload = report.get("reload")
    if reload and "process" in reload and reload["process"]["median_held_p999_ms"] is not None:
        # What a reload as Router.reload does it puts on the loop: its own slices of work (CPU
        # time: the wall time of a slice also holds what the host took from this virtual
        # machine, reported beside it with the steal share) and the swap, and 99.9 % of the
        # loop's turns, waits for a CPU left out. The longest turn of a
        # window is the machine's more than ours (see the idle and busy baselines).
        process = reload["process"]
        met["swap_pause_ms"] = max(process["longest_loop_slice_cpu_ms"], reload["swap_call_ms"],
                                   process["median_held_p999_ms"]) <= TARGETS["swap_pause_ms"]
    return met


def _write_csv(tmp, work):
    """The records as a pre-advice file, and a copy of the plan that names it."""
    csv_path = os.path.join(tmp, "bench.preadvice.csv")
    start = time.perf_counter()
    bench_data.write_csv(csv_path, work.keys, work.destinations)
    written_s = time.perf_counter() - start
    plan_path = os.path.join(tmp, "bench-csv.plan.toml")
    with open(plan_path, "w", encoding="utf-8") as f:
        f.write(bench_data.plan_text_with_preadvice(work.plan_text, "bench.preadvice.csv"))
    return plan_path, {"csv_bytes": os.path.getsize(csv_path), "write_csv_s": round(written_s, 2)}


def _from_csv(plan_path, args):
    """load_plan on the records written as a pre-advice file, in this process: scan, check, table."""
    start = time.perf_counter()
    plan = load_plan(plan_path, args.chutes)
    load_s = time.perf_counter() - start
    return {"load_plan_s": round(load_s, 2), "preadvice_records": plan.preadvice_count, "warnings": plan.warnings}


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
    parser = argparse.ArgumentParser(prog="python -m fastpath.bench.routing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--records", type=int, default=10_000_000, help="pre-advice records (default 10,000,000)")
    parser.add_argument("--chutes", type=int, default=80)
    parser.add_argument("--rules", type=int, default=2000, help="routing-code rules (multiple of 10)")
    parser.add_argument("--decisions", type=int, default=300_000, help="parcels decided by the compiled core")
    parser.add_argument("--pure-decisions", type=int, default=20_000, help="parcels decided by the pure core")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--csv", action="store_true",
                        help="also load the records from a pre-advice file in this process (written to a temp dir)")
    parser.add_argument("--parts", default="decide,reload", help="decide, reload or both (default)")
    parser.add_argument("--reloads", type=int, default=5, help="reloads per way of building (default 5)")
    parser.add_argument("--reload-modes", default=",".join(bench_reload.MODES),
                        help="ways of building a reload: process, thread or both (default)")
    args = parser.parse_args(argv)
    args.parts = args.parts.split(",")
    args.reload_modes = args.reload_modes.split(",")
    if args.chutes < 80 or args.rules < 10 or args.records < 1 or args.decisions < args.pure_decisions:
        parser.error("needs --chutes >= 80, --rules >= 10, --records >= 1, --decisions >= --pure-decisions")
    if not args.parts or set(args.parts) - {"decide", "reload"}:
        parser.error("--parts takes decide, reload or decide,reload")
    if args.reloads < 1 or not args.reload_modes or set(args.reload_modes) - set(bench_reload.MODES):
        parser.error("needs --reloads >= 1 and --reload-modes from process,thread")
    args.argv = argv
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_summary(report)
    return 0


def _print_summary(report):
    if "compiled" in report:
        c, p, b = report["compiled"]["single"], report["pure"]["single"], report["compiled"]["batch"]
        print(f"compiled: {c['decisions_per_s']:,}/s one at a time (p50 {c['ns_p50']} ns, p99 {c['ns_p99']} ns, "
              f"p99.9 {c['ns_p999']} ns), batch {b['decisions_per_s']:,}/s")
        print(f"pure:     {p['decisions_per_s']:,}/s (p50 {p['ns_p50']} ns); "
              f"ratio {report['ratio']['batch_compiled_over_batch_pure']}x (batch), "
              f"{report['ratio']['single_p50_pure_over_compiled']}x (one at a time, p50)")
    print(f"build {report['build']['plan_with_preadvice_s']} s, {report['build']['bytes_per_record']} bytes/record")
    reload = report.get("reload")
    if reload:
        idle = reload["idle"]
        for mode in bench_reload.MODES:
            if mode in reload:
                r = reload[mode]
                print(f"reload in a {mode}: median longest gap {r['median_longest_gap_ms']} ms, held "
                      f"{r['median_longest_held_ms']} ms (idle: {idle['median_longest_gap_ms']} ms, "
                      f"{idle['median_longest_held_ms']} ms), build {r['median_build_s']} s")


if __name__ == "__main__":
    sys.exit(main())
