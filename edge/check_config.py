"""`sortline check-config FILE`: a short summary of a valid config, or every error in it."""
import argparse
import sys

from .config import ConfigError, load_config


def load_or_exit(path):
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"config {path} has {len(exc.errors)} error(s):", file=sys.stderr)
        for e in exc.errors:
            print("  " + e, file=sys.stderr)
        sys.exit(1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline check-config", description=__doc__)
    parser.add_argument("config", help="the line config file (TOML)")
    args = parser.parse_args(argv)
    config = load_or_exit(args.config)
    from fastpath import PlanError, load_plan
    g = config.geometry
    try:
        plan = load_plan(config.resolve(config["plan"]["file"]), n_chutes=len(g.chutes))
    except PlanError as exc:
        print(f"sort plan: {exc}", file=sys.stderr)
        return 1
    needed = config["camera"]["image_wait_ms"] + config["vision"]["budget_ms"]
    print(f"{config['line']['name']}: {len(g.chutes)} chutes, belt {g.belt_speed_m_s:g} m/s, "
          f"{config['line']['diverter']} diverters")
    print(f"plan {plan.version}: {len(plan.destinations)} destinations, {len(plan.routing_codes)} routing codes, "
          f"{plan.preadvice_count} pre-advice records")
    print(f"decision budget {g.decision_after_scan_s * 1000:.0f} ms per parcel, stages need {needed:.0f} ms, "
          f"{g.decision_after_scan_s * 1000 - needed:.0f} ms left")
    return 0
