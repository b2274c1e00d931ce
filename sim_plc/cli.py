"""`sortline sim`: the simulated PLC and line camera, standalone on 127.0.0.1.

With `--parcels 0` it only serves the registers (poke it with mbpoll); with `--forever` parcels
keep coming. Both run until Ctrl-C and then print the shift report. The Modbus server answers the
line config's `[plc] unit` only, and with `--plc-cycle-ms MS --one-request-per-cycle` it answers
as a PLC program that serves one Modbus request per cycle of MS ms.
"""
import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from edge.config import load_or_exit

from . import code_reader, scale
from .arrivals import ArrivalError
from .chutes import ChuteSettings
from .faults import FaultError, parse_fault, usage
from .realtime import request_realtime
from .shift import ARRIVALS, CAMERA_MODES, ShiftSpec, run_shift

log = logging.getLogger("sortline.sim")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sortline sim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/county-24.toml")
    p.add_argument("--port", type=int, default=None, help="override the config's PLC port")
    p.add_argument("--also-port", type=int, default=None,
                   help="serve the other protocol (OPC UA for a Modbus line, Modbus for an OPC UA line) here too")
    p.add_argument("--parcels", type=int, default=240, help="parcels in the shift; 0: no parcels, serve until Ctrl-C")
    p.add_argument("--forever", action="store_true", help="parcels keep coming until Ctrl-C")
    p.add_argument("--rate", type=float, default=12000.0, help="parcels per hour of running belt")
    p.add_argument("--arrivals", choices=ARRIVALS, default="fixed")
    p.add_argument("--trace", default=None, help="CSV of scan times (t_s or timestamp) and optional length_mm, "
                                                 "width_mm, height_mm, weight_kg; implies --arrivals trace")
    p.add_argument("--parcel-length-m", type=float, default=0.4, help="parcel length when the trace has none")
    p.add_argument("--min-gap-m", type=float, default=0.1, help="smallest gap the induction leaves between parcels")
    p.add_argument("--queue-at-induction", action="store_true",
                   help="with --trace: a parcel closer to the one before than its length plus --min-gap-m waits "
                        "at the induction instead of refusing the trace (to replay a denser line's log); the "
                        "report says how many waited and how long")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--boot-id", type=int, default=None, help="the PLC's BOOT_ID (1-65535); default: a new one at "
                   "every start, as a real PLC adds 1 to its retentive boot id")
    p.add_argument("--no-label-share", type=float, default=0.03, help="share of parcels lying label-down")
    p.add_argument("--unknown-route-share", type=float, default=0.04,
                   help="share of parcels whose routing code the plan does not know")
    p.add_argument("--preadvice-share", type=float, default=1.0,
                   help="share of the labelled parcels with a known routing code whose waybill is in the plan's "
                        "pre-advice (real centers: 0.6-0.9); the label alone routes the others")
    p.add_argument("--tier", default="clean", help="label difficulty: clean, rotated, noisy, damaged")
    p.add_argument("--camera", choices=CAMERA_MODES, default=None,
                   help="all (default): render every label image before the first parcel; ahead (default with "
                        "--forever): render them at the lowest priority while parcels run; off: no images")
    p.add_argument("--label-layouts", type=int, default=16,
                   help="label layouts per courier: each parcel re-draws only its label on one; 0: render every "
                        "frame in full (slow)")
    p.add_argument("--label-cache", default="default",
                   help="folder of rendered label images kept between runs (default ~/.cache/sortline/sim-labels); "
                        "'none' for a temporary one")
    p.add_argument("--chute-capacity", type=int, default=60, help="parcels a chute holds before its full sensor trips")
    p.add_argument("--chute-empty-per-min", type=float, default=60.0,
                   help="parcels per minute a worker takes out of a chute")
    p.add_argument("--fault", action="append", default=[], metavar="AT:KIND[:ARG...]",
                   help="a fault once AT parcels have passed the scan point; KIND is one of: " + usage())
    p.add_argument("--no-realtime", action="store_true",
                   help="run at normal priority (by default the simulator asks for real-time scheduling)")
    p.add_argument("--no-wait", action="store_true", help="start parcels without waiting for a controller heartbeat")
    p.add_argument("--report", default=None, help="write the per-parcel ground-truth report (JSON) here")
    p.add_argument("--plc-cycle-ms", type=_cycle_ms, default=None, metavar="MS",
                   help="answer Modbus requests at the boundaries of a PLC cycle of MS ms, as a PLC program that "
                        "serves its Modbus block once per cycle (encoder, flags and chute bits stay on the simulator's 5 ms cycle)")
    p.add_argument("--one-request-per-cycle", action="store_true",
                   help="with --plc-cycle-ms: answer one Modbus request per cycle, the others wait their turn")
    code_reader.add_arguments(p)
    scale.add_arguments(p)
    return p


def _cycle_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds; write e.g. 10") from None
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"{text}: a PLC cycle is more than 0 and at most 1000 ms")
    return value


def spec_from_args(args, parser) -> ShiftSpec:
    if args.parcels < 0:
        parser.error(f"--parcels must be 0 or more, got {args.parcels}")
    if args.boot_id is not None and not 1 <= args.boot_id <= 0xFFFF:
        parser.error(f"--boot-id must be 1-65535, got {args.boot_id}")
    if args.queue_at_induction and not args.trace:
        parser.error("--queue-at-induction queues the parcels of a replayed trace: give --trace FILE too")
    for name in ("preadvice_share", "no_label_share", "unknown_route_share"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name.replace('_', '-')} must be a share from 0 to 1, got {getattr(args, name):g}")
    if args.label_layouts < 0:
        parser.error(f"--label-layouts must be 0 or more, got {args.label_layouts}")
    try:
        faults = tuple(parse_fault(f) for f in args.fault)
        chutes = ChuteSettings(args.chute_capacity, args.chute_empty_per_min)
    except (FaultError, ValueError) as exc:
        parser.error(str(exc))
    return ShiftSpec(
        parcels=None if args.forever else args.parcels, rate_per_h=args.rate,
        arrivals="trace" if args.trace else args.arrivals, trace=args.trace, seed=args.seed,
        no_label_share=args.no_label_share, unknown_route_share=args.unknown_route_share, tier=args.tier,
        preadvice_share=args.preadvice_share,
        parcel_length_m=args.parcel_length_m, min_gap_m=args.min_gap_m, queue_at_induction=args.queue_at_induction,
        camera=args.camera or ("ahead" if args.forever else "all"),
        label_cache=None if args.label_cache == "none" else args.label_cache, label_layouts=args.label_layouts,
        chutes=chutes, faults=faults,
        wait_for_controller_s=None if args.no_wait else 60.0, boot_id=args.boot_id)


async def _run(config, spec, report_path, port, also_port=None, cycle_ms=None, one_per_cycle=False,
               reader_spec=None, reader_port=None, scale_spec=None, scale_port=None) -> dict:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = []
    readers, summaries = [], []
    scales, weighed = [], []

    def configure(plc) -> None:
        started.append(plc)
        if reader_spec is not None:
            readers.append(asyncio.ensure_future(code_reader.started(config, plc.model, reader_spec, reader_port)))
        if scale_spec is not None:
            scales.append(asyncio.ensure_future(scale.started(config, plc.model, scale_spec, scale_port)))
        if plc.modbus is not None:
            plc.modbus.set_unit(config["plc"]["unit"])
            if cycle_ms is not None:
                plc.modbus.serve_in_cycles(cycle_ms / 1000, one_per_cycle)
    try:
        report = await run_shift(config, spec, report_path, port=port, stop=stop, also_port=also_port,
                                 on_started=configure)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for task in readers:
            reader = await task
            await reader.stop()
            summaries.append(reader.summary())
        for task in scales:
            sim_scale = await task
            await sim_scale.stop()
            weighed.append(sim_scale.summary())
    if summaries:
        report["code_reader"] = summaries[0]
    if weighed:
        report["scale"] = weighed[0]
    if started and started[0].modbus is not None or summaries or scales:
        if started and started[0].modbus is not None:
            report["modbus"] = started[0].modbus.stats()
        if report_path:
            Path(report_path).write_text(json.dumps(report, indent=1))
    return report


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # asyncua logs every node of its address space at INFO while the OPC UA server starts (about
    # 1,000 lines): only its warnings belong in the simulator's log.
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    config = load_or_exit(args.config)
    spec = spec_from_args(args, parser)
    reader_spec = code_reader.spec_from_args(args, parser, config)
    scale_spec = scale.spec_from_args(args, parser, config)
    if args.one_request_per_cycle and args.plc_cycle_ms is None:
        parser.error("--one-request-per-cycle needs the cycle: give --plc-cycle-ms MS too")
    if args.plc_cycle_ms is not None and config["plc"]["protocol"] != "modbus" and args.also_port is None:
        parser.error("--plc-cycle-ms paces the Modbus server, and this line speaks OPC UA: add --also-port PORT "
                     "to serve Modbus beside it")
    if not args.no_realtime:
        log.info("simulated PLC runs with %s", request_realtime())
    if spec.parcels == 0 or spec.parcels is None:
        log.info("serving until Ctrl-C")
    try:
        report = asyncio.run(_run(config, spec, args.report, args.port, args.also_port, args.plc_cycle_ms,
                                  args.one_request_per_cycle, reader_spec, args.reader_port, scale_spec,
                                  args.scale_port))
    except (ArrivalError, OSError, TimeoutError, ValueError) as exc:
        print(f"sortline sim: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in report.items() if k != "records"}, indent=1))
    return 0
