"""`sortline read-label IMAGE... [--config FILE]`: what a line's label readers read from each image.

With --config the line's sort plan applies as in the controller's readers: numbers in its couriers'
formats are waybills, and routing codes count only in the shapes of the plan's own. Without it,
the built-in courier formats apply and a routing code of any shape counts. The plan's pre-advice
files are not read (they do not change what is read), so this answers at once on any plan.

Exit status: 0 when every image gave a read, 1 when at least one was a no read or multi read,
2 on a usage error or a config or plan the line could not start with.
"""
from __future__ import annotations

import argparse
import sys

from vision.cli import build_parser, read_images


def main(argv=None) -> int:
    parser = build_parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE", help="the line config: read by its sort plan's rules")
    args = parser.parse_args(argv)
    if args.config:
        plan = _plan_or_none(args.config)
        if plan is None:
            return 2
        from .readers import use_plan_rules
        from .check_config import shapes_text
        use_plan_rules(plan.courier_table, plan.routing_shapes)
        print(f"reading by plan {plan.version} \"{plan.name}\" of {args.config}: the formats of "
              f"{len(plan.couriers)} couriers; routing codes {shapes_text(plan.routing_shapes)}", file=sys.stderr)
    else:
        print("reading by the built-in courier formats, routing codes in any shape; "
              "give --config FILE to read by the line's sort plan", file=sys.stderr)
    return read_images(args)


def _plan_or_none(path):
    from fastpath import PlanError
    from fastpath.plan import load_reading_rules

    from .config_problems import print_errors
    from .config import ConfigError, load_config
    try:
        config = load_config(path)
        return load_reading_rules(config.plan_path, n_chutes=len(config.geometry.chutes))
    except ConfigError as exc:
        print_errors(path, exc.problems)
    except PlanError as exc:
        print_errors(path, [exc])
    return None
