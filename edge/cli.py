"""`sortline`: one command for the technician, with a subcommand per job."""
import argparse
import asyncio
import logging
import sys

DEFAULT_CONFIG = "configs/county-24.toml"


def _load(path):
    from .config import ConfigError, load_config
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"config {path} has {len(exc.errors)} error(s):", file=sys.stderr)
        for e in exc.errors:
            print("  " + e, file=sys.stderr)
        sys.exit(1)


def cmd_run(args) -> int:
    from .app import build_controller, run_until_stopped
    config = _load(args.config)
    asyncio.run(run_until_stopped(build_controller(config)))
    return 0


def cmd_sim(args) -> int:
    import json

    from sim_plc.shift import ShiftSpec, run_shift
    config = _load(args.config)
    spec = ShiftSpec(parcels=args.parcels, rate_per_h=args.rate, arrivals=args.arrivals, seed=args.seed,
                     no_label_share=args.no_label_share, unknown_route_share=args.unknown_route_share)
    report = asyncio.run(run_shift(config, spec, args.report, port=args.port))
    summary = {k: v for k, v in report.items() if k != "records"}
    print(json.dumps(summary, indent=1))
    return 0


def cmd_demo(args) -> int:
    from .demo import demo
    return demo(args.config, args.parcels, args.rate, args.seed)


def cmd_check_config(args) -> int:
    config = _load(args.config)
    g = config.geometry
    from fastpath import PlanError, load_plan
    try:
        plan = load_plan(config.resolve(config["plan"]["file"]), n_chutes=len(g.chutes))
    except PlanError as exc:
        print(f"sort plan: {exc}", file=sys.stderr)
        return 1
    needed = config["camera"]["image_wait_ms"] + config["vision"]["budget_ms"]
    print(f"{config['line']['name']}: {len(g.chutes)} chutes, belt {g.belt_speed_m_s:g} m/s, "
          f"{config['line']['diverter']} diverters")
    print(f"plan {plan.version}: {len(plan.routing_codes)} routing codes")
    print(f"decision budget {g.decision_after_scan_s * 1000:.0f} ms per parcel, stages need {needed:.0f} ms, "
          f"{g.decision_after_scan_s * 1000 - needed:.0f} ms left")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline", description="Edge control for a parcel sorting line.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the controller for a line")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sim", help="run the simulated PLC and camera for a shift")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--parcels", type=int, default=240)
    p.add_argument("--rate", type=float, default=12000.0, help="parcels per hour")
    p.add_argument("--arrivals", choices=("fixed", "poisson"), default="fixed")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--port", type=int, default=None, help="override the config's PLC port")
    p.add_argument("--no-label-share", type=float, default=0.03, help="share of parcels lying label-down")
    p.add_argument("--unknown-route-share", type=float, default=0.04,
                   help="share of parcels whose routing code the plan does not know")
    p.add_argument("--report", default=None, help="write the per-parcel ground-truth report (JSON) here")
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser("demo", help="a short simulated shift through the whole line, with a summary")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--parcels", type=int, default=240)
    p.add_argument("--rate", type=float, default=12000.0, help="parcels per hour")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check-config", help="check a line config and its sort plan")
    p.add_argument("config")
    p.set_defaults(func=cmd_check_config)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The links report connection trouble themselves, once, with the remedy.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
