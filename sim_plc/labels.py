"""What is printed on each parcel of a shift, and where the sort plan says it belongs.

Labels come from the synthetic label generator the vision tests use (vision.synth). Most parcels
are pre-advised (couriers send waybill -> destination ahead); the rest are the exceptions a line
sees: labels facing down, routing codes the plan does not know, parcels only the printed routing
code can route.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ParcelLabel:
    """What is on a parcel: its label's ground truth and how hard it is to read."""
    truth: object | None                 # vision.synth.LabelTruth, None when no label faces the camera
    tier: str                            # a vision.synth tier, or "no-label"


def printable_codes(plan) -> dict[str, list[str]]:
    """Routing codes as a label prints them, grouped by the destination the plan gives them."""
    from fastpath import Router
    router = Router(plan)
    by_destination: dict[str, list[str]] = {}
    for code in plan.routing_codes:
        if code.count("-") < 2:          # a prefix rule: labels print a full three-segment code
            code += "-07"
        destination = router.decide([], code).destination
        if destination:
            by_destination.setdefault(destination, []).append(code)
    return by_destination


def preadvised_records(plan) -> list[tuple[str, str]]:
    """The (waybill, destination) records of the plan's pre-advice files: this shift's parcels."""
    import csv
    import tomllib
    spec = tomllib.loads(Path(plan.path).read_text(encoding="utf-8"))
    records = []
    for name in spec.get("preadvice", {}).get("files", []):
        with open(Path(plan.path).parent / name, encoding="utf-8", newline="") as f:
            for row in csv.reader(line for line in f if not line.startswith("#")):
                if len(row) == 2 and row[0] != "waybill":
                    records.append((row[0].strip(), row[1].strip()))
    return records


def label_stream(plan, seed: int, no_label_share: float, unknown_route_share: float,
                 not_preadvised_share: float = 0.0, tier: str = "clean"):
    """An endless stream of parcel labels; the same seed gives the same parcels."""
    from vision.synth import LabelTruth, random_truth
    from vision.waybill import courier_of
    shares = {"no_label_share": no_label_share, "unknown_route_share": unknown_route_share,
              "not_preadvised_share": not_preadvised_share}
    for name, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be a share from 0 to 1, got {share:g}")
    rng = np.random.default_rng(seed)
    codes = printable_codes(plan)
    known = sorted(c for cs in codes.values() for c in cs)
    unknown = [f"{rng.integers(900, 999)}-Z{rng.integers(10, 99)}-{rng.integers(10, 99)}" for _ in range(20)]
    records = preadvised_records(plan)
    order = list(rng.permutation(len(records)))
    while True:
        u = rng.random()
        if u < no_label_share:
            yield ParcelLabel(None, "no-label")
        elif u < no_label_share + unknown_route_share:
            yield ParcelLabel(random_truth(rng, routing_codes=unknown), tier)
        elif u < 1.0 - not_preadvised_share and order:
            waybill, destination = records[order.pop()]
            base = random_truth(rng, routing_codes=codes.get(destination) or known)
            yield ParcelLabel(LabelTruth(courier=courier_of(waybill) or base.courier,
                                         waybill=waybill, routing_code=base.routing_code), tier)
        else:
            yield ParcelLabel(random_truth(rng, routing_codes=known), tier)


class Expectation:
    """The chutes the plan allows for a label read perfectly: any chute of its destination."""

    def __init__(self, plan):
        from fastpath import Reason, Router
        self.plan = plan
        self.router = Router(plan)
        self.by_destination = dict(zip(plan.destinations, plan.group_chutes[1:]))
        self.overrides = [set(plan.group_chutes[g]) for g in plan.override_group.values()]
        self.reason = Reason

    def __call__(self, label: ParcelLabel) -> tuple[int, ...]:
        if label.truth is None:
            return (self.plan.special["no_read"],)
        d = self.router.decide([label.truth.waybill], label.truth.routing_code)
        if d.reason == self.reason.COURIER_OVERRIDE:
            return tuple(next(g for g in self.overrides if d.chute in g))
        if d.reason in (self.reason.PREADVICE, self.reason.ROUTING_CODE, self.reason.COURIER_RULE):
            return tuple(self.by_destination[d.destination])
        return (d.chute,)
