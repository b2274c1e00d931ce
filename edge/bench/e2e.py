"""`sortline bench e2e`: the simulated PLC and the controller as separate processes, full vision
on generated labels, at a given parcel rate; prints what the PLC saw (JSON with --json).

    sortline bench e2e --rate 40000 --parcels 2000 --protocol modbus --json
    sortline bench e2e --find-max --json       # highest rate with zero misses, 45 s per rate step
    sortline bench e2e --find-max --rates 260000,320000,400000 --json   # only these steps
    sortline bench e2e --preadvice-share 0.6 --rate 40000 --parcels 3000 --json   # a real day's pre-advice
    sortline bench e2e --trace site-log.csv --queue-at-induction --json  # another site's arrivals and sizes
    sortline bench e2e --rate 40000 --plc-cycle-ms 10 --one-request-per-cycle --json   # one request per 10 ms

With --preadvice-share below 1 the other parcels are in no pre-advice: the controller routes them
from the label (routing code, courier rules), and `decision_paths` says per path how many went
to the right chute, to an exception chute, by a courier rule, or to a wrong chute (edge/bench/paths.py).

Latency is measured on the PLC side: from the scan photo-eye to the assignment in the PLC.
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

from .paths import decision_paths, exception_chutes, label_misses
from ..config_copy import derive_config

RATES_FOR_MAX = (6000, 20000, 40000, 80000, 120000, 150000, 180000, 220000, 260000, 320000, 400000, 500000)


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its running children (the label readers), from /proc."""
    total = 0
    for task in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue                  # ended in between: counted in its parent's children fields
        # utime, stime, and the same for children already waited for
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            out += [kid, *_children(kid)]
    return out


def _machine_busy() -> tuple[int, int, int]:
    """(busy, total, stolen) jiffies of all CPUs, from /proc/stat: idle and I/O wait count as not
    busy; stolen is the time a virtual machine's host gave to others (counted busy)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])
    return total - fields[3] - fields[4], total, fields[7]


def _plan_with_preadvice(base, data: dict, workdir: Path, records: int) -> Path:
    """A copy of the line's plan whose pre-advice covers the whole run, as couriers send it ahead."""
    import shutil
    import subprocess
    import tomllib
    plan = (Path(base).resolve().parent / data["plan"]["file"]).resolve()
    folder = workdir / "plans"
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / plan.name
    shutil.copy(plan, copy)
    for name in tomllib.loads(plan.read_text(encoding="utf-8")).get("preadvice", {}).get("files", []):
        subprocess.run([sys.executable, "-m", "fastpath.samples", "preadvice", str(copy), "--out",
                        str(folder / name), "--records", str(records), "--seed", "29",
                        "--chutes", str(len(data["line"]["chutes"]))], check=True, stdout=subprocess.DEVNULL)
    return copy


def bench_config(base, workdir: Path, protocol: str, budget_ms: float | None, preadvice_records: int = 0,
                 vision_budget_ms: float | None = None, hedge_reads: bool | None = None) -> Path:
    import tomllib
    data = tomllib.loads(Path(base).read_text(encoding="utf-8"))
    line = data["line"]
    overrides = {
        "plc": {"protocol": protocol, "port": _free_port()},
        "camera": {"folder": str(workdir / "camera")},
        "records": {"folder": str(workdir / "records")},
        "plan": {"watch": False},
        "screen": {"enabled": False},
    }
    if vision_budget_ms is not None:
        overrides.setdefault("vision", {})["budget_ms"] = vision_budget_ms
    if hedge_reads is not None:
        overrides.setdefault("vision", {})["hedge_reads"] = hedge_reads
    if preadvice_records:
        overrides["plan"]["file"] = str(_plan_with_preadvice(base, data, workdir, preadvice_records))
    if budget_ms is not None:
        # Move the PLC margin so that the decision point falls budget_ms after the scan.
        first_m = min(c["position_m"] for c in line["chutes"] if c["side"] != "end")
        margin = first_m / line["belt_speed_m_s"] * 1000 - line["switch_time_ms"] - budget_ms
        if margin < 0:
            raise SystemExit(f"a {budget_ms:g} ms budget does not fit this line: the first diverter is "
                             f"{first_m:g} m after the scan point; choose a smaller budget")
        overrides["line"] = {"plc_margin_ms": margin}
    return derive_config(base, workdir / "line.toml", overrides)


def _feed_args(config: Path, rate: float) -> list[str]:
    """Parcels short enough for the rate on this belt, and chutes that never fill.

    Above what the belt can physically carry (a swing-arm line tops out near 14,000 parcels/h)
    the run is a stress test of the controller: parcels are drawn shorter than real ones so that
    the simulated PLC can feed it at the asked rate.
    """
    import tomllib
    speed = tomllib.loads(config.read_text())["line"]["belt_speed_m_s"]
    pitch_m = speed * 3600 / rate
    return ["--parcel-length-m", f"{min(0.4, pitch_m * 0.6):.4f}", "--min-gap-m", f"{min(0.1, pitch_m * 0.2):.4f}",
            "--chute-capacity", "1000000"]


def _cycle_args(args) -> list[str]:
    """The simulated PLC's Modbus pace: answers at its cycle boundaries, one request per cycle if asked."""
    if args.plc_cycle_ms is None:
        return []
    return ["--plc-cycle-ms", str(args.plc_cycle_ms), *(["--one-request-per-cycle"] if args.one_request_per_cycle else [])]


def _arrival_args(args, config: Path, rate: float) -> list[str]:
    """The simulated PLC's arrivals: a replayed trace with its own sizes, or parcels fed at `rate`."""
    if not args.trace:
        return _feed_args(config, rate)
    queue = ["--queue-at-induction", "--min-gap-m", str(args.min_gap_m)] if args.queue_at_induction else []
    return ["--trace", str(args.trace.resolve()), *queue, "--chute-capacity", "1000000"]


def _read_trace(args) -> tuple[int, float]:
    """(parcels, parcels per hour) of the --trace file as the line's belt would carry it, refused
    here with the reader's message rather than after the controller has started."""
    import tomllib

    from sim_plc.arrivals import ArrivalError, read_trace
    speed = tomllib.loads(Path(args.config).read_text(encoding="utf-8"))["line"]["belt_speed_m_s"]
    try:
        arrivals = read_trace(args.trace, speed, queue_gap_m=args.min_gap_m if args.queue_at_induction else None)
    except ArrivalError as exc:
        raise SystemExit(f"sortline bench e2e: {exc}") from None
    arrivals = arrivals[:args.parcels] if args.parcels else arrivals
    span_s = arrivals[-1].at_m / speed
    return len(arrivals), (len(arrivals) - 1) * 3600 / span_s if span_s > 0 else 0.0


def _controller_reads(records_db: Path) -> dict:
    """(PLC boot, tracking) -> the routing code the controller read and its read time."""
    db = sqlite3.connect(records_db)
    try:
        return {(boot, tracking): {"routing_code": code, "read_ms": read_ms} for boot, tracking, code, read_ms
                in db.execute("SELECT plc_boot, tracking, routing_code, read_ms FROM parcels")}
    finally:
        db.close()


def _vision_budget_ms(config: Path) -> float:
    from ..config import load_config
    return load_config(config)["vision"]["budget_ms"]


def _exception_chutes(config: Path) -> frozenset[int]:
    """The plan's exception chutes and the end of the line, from the run's config and plan."""
    import tomllib
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    plan = tomllib.loads(Path(data["plan"]["file"]).read_text(encoding="utf-8"))
    return exception_chutes(plan["special"], data["line"]["end_chute"])


class StolenTime:
    """The share of CPU time the virtual machine's host took, per half second of the run.

    The host's bursts show as runs of slow parcels whatever the software does; the latency of the
    parcels scanned while it took (next to) nothing is printed beside the whole run's.
    """
    PERIOD_S = 0.5
    QUIET = 0.01

    def __init__(self):
        self.samples: list[tuple[float, float]] = []      # (wall-clock end of the half second, share stolen)
        self._task = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def _run(self) -> None:
        import time
        _, total0, stolen0 = _machine_busy()
        while True:
            await asyncio.sleep(self.PERIOD_S)
            _, total, stolen = _machine_busy()
            self.samples.append((time.time(), (stolen - stolen0) / max(1, total - total0)))
            total0, stolen0 = total, stolen

    def quiet(self, decided_wall: float) -> bool | None:
        """Whether the host took less than QUIET in the half second a parcel was decided in and the
        one before (its scan and its read lie within them)."""
        import bisect
        i = bisect.bisect_left(self.samples, (decided_wall,))
        if i < 1 or i >= len(self.samples):
            return None
        return self.samples[i][1] < self.QUIET and self.samples[i - 1][1] < self.QUIET


def _host_quiet_latency(stolen: StolenTime, records_db: Path, report: dict) -> dict:
    db = sqlite3.connect(records_db)
    decided = dict(db.execute("SELECT tracking, scanned_wall FROM parcels"))     # written when decided
    db.close()
    lat = sorted(r["assign_ms"] for r in report["records"]
                 if r["assign_ms"] is not None and r["tracking"] in decided and stolen.quiet(decided[r["tracking"]]))
    if not lat:
        return {"parcels": 0}
    return {"parcels": len(lat), "stolen_below": StolenTime.QUIET, "p50": round(lat[len(lat) // 2], 3),
            "p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3)}


async def stop_both(ctl, sim, grace_s: float) -> None:
    """The controller as systemd stops it (SIGTERM, then kill after `grace_s`); the simulated PLC at once."""
    if ctl.returncode is None:
        ctl.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(ctl.wait(), grace_s)
        except asyncio.TimeoutError:
            ctl.kill()
    if sim.returncode is None:
        sim.kill()


def stage_medians(records_db: Path) -> dict:
    db = sqlite3.connect(records_db)
    out = {}
    for stage in ("image_ms", "read_ms", "decide_ms", "total_ms"):
        values = sorted(v for (v,) in db.execute(f"SELECT {stage} FROM parcels WHERE {stage} IS NOT NULL"))
        if values:
            out[stage] = {"p50": round(values[len(values) // 2], 3),
                          "p99": round(values[min(len(values) - 1, int(len(values) * 0.99))], 3)}
    db.close()
    return out


async def run_once(args, rate: float) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="sortline-bench-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    config = bench_config(args.config, workdir, args.protocol, args.budget_ms,
                          preadvice_records=max(1000, args.parcels * 2), vision_budget_ms=args.vision_budget_ms,
                          hedge_reads=args.hedge_reads)
    report_path = workdir / "report.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(config), "--parcels", str(args.parcels),
        "--rate", str(rate), "--seed", str(args.seed), "--report", str(report_path),
        "--no-label-share", str(args.no_label_share), "--unknown-route-share", str(args.unknown_route_share),
        "--preadvice-share", str(args.preadvice_share), *_arrival_args(args, config, rate), *_cycle_args(args),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env)
    ctl = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "run", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env)
    cpu0, busy0 = None, None
    stolen = StolenTime()
    stolen.start()
    sim_log = []
    try:
        async with asyncio.timeout(args.timeout_s):
            while line := await sim.stderr.readline():
                text = line.decode(errors="replace").rstrip()
                sim_log.append(text)
                if cpu0 is None and "controller heartbeat present" in text:
                    cpu0, busy0 = _cpu_s(ctl.pid), _machine_busy()
            await sim.wait()
        cpu1, busy1 = _cpu_s(ctl.pid), _machine_busy()
    finally:
        stolen.stop()
        await stop_both(ctl, sim, 15)
    try:
        if sim.returncode != 0 or not report_path.exists():
            raise SystemExit("the simulated PLC failed:\n" + "\n".join(sim_log[-30:]))
        report = json.loads(report_path.read_text())
        stages = stage_medians(workdir / "records" / "parcels.sqlite")
        exceptions = _exception_chutes(config)
        paths = decision_paths(report["records"], exceptions)
        paths["label_misses"] = label_misses(report["records"], exceptions,
                                             _controller_reads(workdir / "records" / "parcels.sqlite"),
                                             _vision_budget_ms(config))
        quiet = _host_quiet_latency(stolen, workdir / "records" / "parcels.sqlite", report)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)      # the camera images live in RAM (/dev/shm)
    lat = [r["assign_ms"] for r in report["records"] if r["assign_ms"] is not None]
    lat.sort()

    def pct(q):
        return round(lat[min(len(lat) - 1, int(len(lat) * q))], 3) if lat else None
    misses = sum(1 for r in report["records"] if r["result"] in ("LATE", "NO_HEARTBEAT"))
    return {
        "rate_per_h": rate, "parcels": report["parcels"], "protocol": args.protocol,
        "decision_budget_ms": args.budget_ms, "vision_budget_ms": args.vision_budget_ms,
        "hedge_reads": args.hedge_reads, "take_core": args.take_core,
        "plc_cycle_ms": args.plc_cycle_ms, "one_request_per_cycle": args.one_request_per_cycle,
        "latency_ms": {"p50": pct(0.50), "p99": pct(0.99), "p99_9": pct(0.999), "max": lat[-1] if lat else None},
        "deadline_misses": misses, "lost": report["lost"],
        "clean_accuracy": report["clean_accuracy"], "correct": report["correct"],
        "by_reason": report["by_reason"],
        "preadvice_share": args.preadvice_share, "decision_paths": paths,
        **({"trace": str(args.trace), "induction_queue": report.get("induction_queue")} if args.trace else {}),
        "controller_cpu_ms_per_parcel": round((cpu1 - (cpu0 or 0)) * 1000 / max(1, report["parcels"]), 3),
        # Everything on the machine (simulated PLC and its camera included), as a share of all CPUs.
        "machine_cpu_busy_share": (round((busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 3)
                                   if busy0 else None),
        # A virtual machine's host taking CPUs away shows here, and in every tail above.
        "machine_cpu_stolen_share": (round((busy1[2] - busy0[2]) / max(1, busy1[1] - busy0[1]), 3)
                                     if busy0 else None),
        # The same latency for the parcels scanned while the host took (next to) no CPU time.
        "latency_ms_while_host_quiet": quiet,
        "controller_stages_ms": stages,
        # What the simulated PLC's Modbus server answered: requests per second, how long they waited.
        **({"plc_modbus": report["modbus"]} if "modbus" in report else {}),
        **({"kept_files": str(workdir)} if args.keep else {}),
    }


def _stall(text: str) -> str:
    from .core_stall import parse
    try:
        parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _cycle_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds; write e.g. 10") from None
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"{text}: a PLC cycle is more than 0 and at most 1000 ms")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; write a share such as 0.6") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share from 0 to 1; write e.g. 0.6 for 60 %")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of parcels") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: a run needs at least 1 parcel")
    return value


def _rates(text: str) -> tuple[int, ...]:
    try:
        rates = tuple(int(float(part)) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of rates; write e.g. 200000,260000,320000") from None
    if not rates or any(r <= 0 for r in rates) or list(rates) != sorted(rates):
        raise argparse.ArgumentTypeError(f"{text!r}: give positive rates in rising order, e.g. 200000,260000,320000")
    return rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline bench e2e", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/county-24.toml")
    parser.add_argument("--rate", type=float, default=6000.0, help="parcels per hour")
    parser.add_argument("--parcels", type=_count, help="parcels in the run (default 1000, or every row of --trace)")
    parser.add_argument("--protocol", choices=("modbus", "opcua"), default="modbus")
    parser.add_argument("--vision-budget-ms", type=float,
                        help="label reading budget per parcel ([vision] budget_ms; default: the config's)")
    parser.add_argument("--hedge-reads", choices=("on", "off"),
                        help="an idle label reader reads the same image too ([vision] hedge_reads; default: the config's)")
    parser.add_argument("--take-core", type=_stall, metavar="CORE,BURST_MS,PERIOD_MS",
                        help="take a core away for a burst in every period during the run, as a virtual "
                             "machine's host would (edge/bench/core_stall.py), e.g. 1,20,200")
    parser.add_argument("--preadvice-share", type=_share, default=1.0, metavar="F",
                        help="share of the parcels whose waybill is in the pre-advice file the controller gets "
                             "(real centers: 0.6-0.9; of those with a label and a known routing code, when the two "
                             "shares below are set); the label routes the others (default 1)")
    parser.add_argument("--no-label-share", type=_share, default=0.0, metavar="F",
                        help="share of parcels lying label-down (default 0)")
    parser.add_argument("--unknown-route-share", type=_share, default=0.0, metavar="F",
                        help="share of parcels whose routing code no route of the plan knows (default 0)")
    parser.add_argument("--trace", type=Path, metavar="CSV",
                        help="replay these arrival times and sizes instead of --rate (the format of sortline sim "
                             "--trace: t_s or timestamp, optional length_mm, width_mm, height_mm, weight_kg)")
    parser.add_argument("--queue-at-induction", action="store_true",
                        help="with --trace: hold parcels back at the induction where the trace is denser than "
                             "the belt allows, instead of refusing it")
    parser.add_argument("--min-gap-m", type=float, default=0.1,
                        help="with --queue-at-induction: the gap the induction leaves between parcels (default 0.1)")
    parser.add_argument("--budget-ms", type=float, default=250.0, help="decision budget after the scan")
    parser.add_argument("--plc-cycle-ms", type=_cycle_ms, metavar="MS",
                        help="the simulated PLC answers Modbus at the boundaries of an MS ms cycle (sortline sim "
                             "--plc-cycle-ms)")
    parser.add_argument("--one-request-per-cycle", action="store_true",
                        help="with --plc-cycle-ms: one Modbus request answered per cycle, as a PLC program that "
                             "calls its Modbus server block once per cycle")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--find-max", action="store_true", help="step the rate up until a deadline is missed")
    parser.add_argument("--rates", type=_rates,
                        help="with --find-max: the rates to step through, comma-separated parcels per hour "
                             f"(default {','.join(map(str, RATES_FOR_MAX))})")
    parser.add_argument("--step-s", type=float, default=45.0,
                        help="with --find-max: seconds of parcels per rate step (default 45)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the run's files (camera images, records, the PLC's report) and print where")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    if args.trace and args.find_max:
        parser.error("--find-max steps through generated rates; a --trace brings its own: give one of them")
    if args.queue_at_induction and not args.trace:
        parser.error("--queue-at-induction queues the parcels of a replayed trace: give --trace CSV too")
    if args.one_request_per_cycle and args.plc_cycle_ms is None:
        parser.error("--one-request-per-cycle needs the cycle: give --plc-cycle-ms MS too")
    if args.plc_cycle_ms is not None and args.protocol != "modbus":
        parser.error("--plc-cycle-ms paces the simulated PLC's Modbus server: use it with --protocol modbus")
    if args.trace:
        args.parcels, args.rate = _read_trace(args)
    elif args.parcels is None:
        args.parcels = 1000
    if args.hedge_reads is not None:
        args.hedge_reads = args.hedge_reads == "on"
    stall = None
    if args.take_core:
        import subprocess
        stall = subprocess.Popen([sys.executable, "-m", "edge.bench.core_stall", *args.take_core.split(",")])
    try:
        return _main(args)
    finally:
        if stall is not None:
            stall.kill()
            stall.wait()


def _main(args) -> int:
    if not args.find_max:
        result = asyncio.run(run_once(args, args.rate))
    else:
        runs, best = [], None
        for rate in args.rates or RATES_FOR_MAX:
            # Each step runs about --step-s seconds of belt time, whatever its rate.
            args.parcels = max(100, round(rate * args.step_s / 3600))
            r = asyncio.run(run_once(args, rate))
            runs.append(r)
            if r["deadline_misses"] or r["lost"]:
                break
            best = rate
        last = runs[-1]["controller_stages_ms"]
        limiting = max(("image_ms", "read_ms", "decide_ms"), key=lambda s: last.get(s, {}).get("p99", 0))
        result = {"highest_rate_without_misses_per_h": best, "limiting_stage": limiting, "runs": runs}
    print(json.dumps(result, indent=None if args.json else 1))
    return 0
