"""`sortline check-config FILE`: a short summary of a valid config and its plan, or every error in them.

Exit status 0 when the line can run with it, 1 when it cannot. Nothing is sent to the line: run it
before `sortline reload` or a restart.
"""
import argparse
import sys

from .config import ConfigError, load_config
from .config_problems import print_errors


def shapes_text(shapes) -> str:
    if not shapes:
        return "in any shape (the plan spells out no full code)"
    return "in the shapes " + ", ".join(sorted("-".join(map(str, s)) for s in shapes))


def summary(config, plan, scheduled=()) -> list[str]:
    """`scheduled`: (Slot, Plan) for each [[plan.schedule]] entry."""
    g, line = config.geometry, config["line"]
    sides = {side: sum(c.side == side for c in g.chutes) for side in ("left", "right")}
    stages = config.stage_budgets_ms
    needed = sum(stages.values())
    budget = g.decision_after_scan_s * 1000
    plc = config["plc"]
    lines = [
        f"line      {line['name']}: {len(g.chutes)} chutes ({sides['left']} left, {sides['right']} right, "
        f"end chute {g.end_chute}), belt {g.belt_speed_m_s:g} m/s, {line['diverter']} diverters "
        f"({line['switch_time_ms']:g} ms)",
        f"plc       {plc['protocol']} {plc['host']}:{plc['port']}",
        f"plan      {plan.version} \"{plan.name}\": {len(plan.destinations)} destinations, "
        f"{len(plan.couriers)} couriers, {len(plan.routing_codes)} routing codes, "
        f"{plan.preadvice_count} pre-advice records",
        *(f"schedule  #{slot.index} {slot.when()}: {slot.file.name}, plan {other.version} \"{other.name}\", "
          f"{other.preadvice_count} pre-advice records" for slot, other in scheduled),
        "shapes    routing codes are read " + shapes_text(plan.routing_shapes),
        "special   " + ", ".join(f"{k} {v}" for k, v in plan.special.items() if k != "unavailable"),
        f"budget    {budget:.0f} ms per parcel from scan to decision point; stages need {needed:.0f} ms "
        f"(image {stages['image']:g} + read {stages['read']:g} + decide {stages['decide']:g} + assign "
        f"{stages['assign']:g}); {budget - needed:.0f} ms left",
        f"records   {config.records_folder} (kept {config['records']['retention_days']} days)",
    ]
    screen = config["screen"]
    if screen["enabled"]:
        lines.append(f"screen    http://{screen['bind']}:{screen['port']}/ (token in "
                     f"{config.resolve(screen['token_file'])})")
    if config["metrics"]["enabled"]:
        lines.append(f"metrics   http://{config['metrics']['listen']}/metrics (for Prometheus, no login)")
    lines += [f"warning   {w}" for w in plan.warnings]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline check-config", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="the line config file (TOML)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print_errors(args.config, exc.problems)
        return 1
    from fastpath import PlanError, load_plan
    from .plan_schedule import Schedule
    try:
        plan = load_plan(config.plan_path, n_chutes=len(config.geometry.chutes))
        # Each scheduled plan is built whole too, pre-advice included, as it will be at its time.
        scheduled = [(slot, load_plan(slot.file, n_chutes=len(config.geometry.chutes)))
                     for slot in Schedule.from_config(config).slots]
    except PlanError as exc:
        print_errors(args.config, [exc])
        return 1
    if config["plc"]["protocol"] == "opcua":
        # Certificates and logins are files and pairs of keys: check them here, not at the line.
        from drivers.opcua import check_settings

        from .run import link_settings
        problems = check_settings(link_settings(config))
        if problems:
            print(f"config {args.config} has {len(problems)} error(s):", file=sys.stderr)
            for p in problems:
                print(f"  {args.config}: {p}", file=sys.stderr)
            return 1
    print(f"{args.config}: OK")
    for line in summary(config, plan, scheduled):
        print("  " + line)
    return 0
