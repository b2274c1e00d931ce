"""`sortline sim`: the simulated PLC and line camera, standalone on 127.0.0.1."""
import argparse
import asyncio
import json

from edge.check_config import load_or_exit

from .shift import ShiftSpec, run_shift


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline sim", description=__doc__)
    parser.add_argument("--config", default="configs/county-24.toml")
    parser.add_argument("--parcels", type=int, default=240)
    parser.add_argument("--rate", type=float, default=12000.0, help="parcels per hour")
    parser.add_argument("--arrivals", choices=("fixed", "poisson"), default="fixed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=None, help="override the config's PLC port")
    parser.add_argument("--no-label-share", type=float, default=0.03, help="share of parcels lying label-down")
    parser.add_argument("--unknown-route-share", type=float, default=0.04,
                        help="share of parcels whose routing code the plan does not know")
    parser.add_argument("--report", default=None, help="write the per-parcel ground-truth report (JSON) here")
    args = parser.parse_args(argv)
    config = load_or_exit(args.config)
    spec = ShiftSpec(parcels=args.parcels, rate_per_h=args.rate, arrivals=args.arrivals, seed=args.seed,
                     no_label_share=args.no_label_share, unknown_route_share=args.unknown_route_share)
    report = asyncio.run(run_shift(config, spec, args.report, port=args.port))
    print(json.dumps({k: v for k, v in report.items() if k != "records"}, indent=1))
    return 0
