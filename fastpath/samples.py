"""Sample data made from a plan: waybill numbers in each courier's formats, pre-advice files.

    python -m fastpath.samples preadvice configs/plans/county-24.plan.toml \
        --out configs/plans/county-24.preadvice.csv --records 300 --seed 24

The label generator and the benchmark use the same functions, so that sample parcels look
like what the plan expects.
"""
import argparse
import random
import sys

from . import couriers as courier_formats
from .plan_file import read_plan_file

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"


def waybill_from_masks(rng, masks, s10=False):
    chars = []
    for mask in masks:
        allowed = [c for c in _ALPHABET if mask >> courier_formats.char_class(ord(c)) & 1]
        chars.append(rng.choice(allowed))
    if s10:
        total = sum(w * int(chars[2 + k]) for k, w in enumerate(courier_formats.S10_WEIGHTS))
        check = 11 - total % 11
        chars[10] = str({10: 0, 11: 5}.get(check, check))
    return "".join(chars)


def courier_formats_of(spec):
    """[(courier name, masks, s10)] for every format of every courier in the plan spec."""
    found = []
    for name, formats, s10 in spec.couriers:
        found.extend((name, masks, False) for masks in formats)
        if s10:
            found.append((name, courier_formats.S10_MASKS, True))
    return found


def write_preadvice(spec, out, records, seed, command):
    rng = random.Random(seed)
    formats = courier_formats_of(spec)
    destinations = [name for name, _, _ in spec.destinations]
    seen = set()
    lines = [f"# Generated sample pre-advice ({records} records, seed {seed}): {command}", "waybill,destination"]
    while len(seen) < records:
        _, masks, s10 = rng.choice(formats)
        number = waybill_from_masks(rng, masks, s10)
        if number not in seen:
            seen.add(number)
            lines.append(f"{number},{rng.choice(destinations)}")
    out.write("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastpath.samples", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    pre = sub.add_parser("preadvice", help="write a sample pre-advice CSV for a plan")
    pre.add_argument("plan")
    pre.add_argument("--out", required=True)
    pre.add_argument("--records", type=int, default=300)
    pre.add_argument("--seed", type=int, default=24)
    pre.add_argument("--chutes", type=int, default=24, help="chute count of the line (default 24)")
    args = parser.parse_args(argv)
    spec = read_plan_file(args.plan, args.chutes)
    command = (f"python -m fastpath.samples preadvice {args.plan} --out {args.out} "
               f"--records {args.records} --seed {args.seed}")
    with open(args.out, "w", encoding="utf-8") as out:
        write_preadvice(spec, out, args.records, args.seed, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
