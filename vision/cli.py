"""`sortline read-label IMAGE...`: print what is read from each image.

Exit status: 0 when every image gave a read, 1 when at least one was a no read or multi read,
2 on a usage error.
"""
from __future__ import annotations

import argparse
import json
import sys


def _line(path: str, r) -> str:
    if r.no_read_reason:
        return f"{path}: NO READ ({r.no_read_reason}) [{r.elapsed_ms:.1f} ms]"
    kind = "MULTI READ" if r.is_multi_read else "read"
    waybills = ", ".join(r.waybills) or "-"
    routing = r.routing_code or (f"- ({r.routing_note})" if r.routing_note else "-")
    srcs = ", ".join(f"{k}={v}" for k, v in r.sources.items() if k != "by_waybill")
    return (f"{path}: {kind} waybill {waybills} courier {r.courier or '-'} routing {routing} "
            f"confidence {r.confidence:.3f} ({srcs}) [{r.elapsed_ms:.1f} ms]")


def build_parser(**kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sortline read-label", **kwargs)
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--budget-ms", type=float, default=40.0, help="time budget per image (default 40)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def main(argv=None) -> int:
    return read_images(build_parser(description="Read parcel label images.").parse_args(argv))


def read_images(args) -> int:
    from vision import warm_up
    from vision.pipeline import read_label
    ok, message = warm_up()
    if not ok:
        print(f"warning: {message}", file=sys.stderr)
    all_read = True
    for path in args.images:
        r = read_label(path, budget_ms=args.budget_ms)
        all_read &= r.is_read and not r.is_multi_read
        if args.json:
            print(json.dumps({"image": path, "waybills": list(r.waybills), "routing_code": r.routing_code,
                              "courier": r.courier, "sources": r.sources, "confidence": r.confidence,
                              "routing_note": r.routing_note, "unknown_format": list(r.unknown_format),
                              "elapsed_ms": round(r.elapsed_ms, 2), "no_read_reason": r.no_read_reason},
                             ensure_ascii=False))
        else:
            print(_line(path, r))
    return 0 if all_read else 1


if __name__ == "__main__":
    sys.exit(main())
