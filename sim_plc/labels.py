"""What is printed on each parcel of a shift, and where the sort plan says it belongs.

Labels come from the synthetic label generator the vision tests use (vision.synth). Most parcels
are pre-advised (couriers send waybill -> destination ahead); the rest are the exceptions a line
sees: labels facing down, routing codes the plan does not know, parcels only the label (routing
code, courier) can route. Each label carries its truth: what is printed, and whether its waybill
is in the pre-advice; the Expectation says where the plan sends it and by which rule.
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_CODES_PER_RULE = 200          # a range or prefix rule prints at most this many different codes


@dataclass(frozen=True)
class ParcelLabel:
    """What is on a parcel: its label's ground truth and how hard it is to read."""
    truth: object | None                 # vision.synth.LabelTruth, None when no label faces the camera
    tier: str                            # a vision.synth tier, or "no-label"
    preadvised: bool = False             # its waybill is in the plan's pre-advice


@dataclass(frozen=True)
class PrintedRoute:
    """One [[routes]] rule of the plan and the codes a label may print for it."""
    rule: str                            # as the plan writes it: "312-Q01", "312-07-33-01..312-07-33-06"
    destination: str
    codes: tuple[str, ...]               # each routed by the plan to `destination`


def printed_routes(plan) -> list[PrintedRoute]:
    """Every route rule of the plan with the full codes labels print for it, in file order.

    A prefix rule is printed as a full code of the longest shape the plan's codes give it
    ("312-Q01" as 312-Q01-NN, the EMS-style "312-07-34" as 312-07-34-NN); a code that a more
    specific rule takes elsewhere ("312-J25-03" under the prefix "312-J25") is not printed for it.
    """
    from fastpath import Router
    from fastpath.plan_file import read_plan_file
    router = Router(plan)
    shapes = plan.routing_shapes or frozenset()
    routes = []
    for rule in read_plan_file(plan.path, plan.n_chutes).routes:
        canon = rule.canon.decode("utf-8")
        if rule.kind == "range":
            width = len(rule.text.split("..")[0].rsplit("-", 1)[-1])
            numbers = range(rule.low, min(rule.high, rule.low + MAX_CODES_PER_RULE - 1) + 1)
            candidates = [f"{canon}-{str(n).zfill(width)}" if canon else str(n).zfill(width) for n in numbers]
        elif rule.kind == "prefix":
            candidates = _completions(canon, shapes)
        else:
            candidates = [canon]
        codes = tuple(c for c in candidates if router.decide([], c).destination == rule.destination)
        if codes:
            routes.append(PrintedRoute(rule.text, rule.destination, codes))
    return routes


def _completions(prefix: str, shapes) -> list[str]:
    """Full codes under `prefix`, numbered in the segments the longest matching shape adds."""
    lengths = tuple(len(s) for s in prefix.split("-"))
    longer = [s for s in shapes if len(s) > len(lengths) and s[:len(lengths)] == lengths]
    if longer:
        rest = max(longer, key=len)[len(lengths):]
    elif len(lengths) < 3:
        rest = (2,) * (3 - len(lengths))     # the plan names no full code: print three segments
    else:
        return [prefix]
    top = min(10 ** min(rest), MAX_CODES_PER_RULE)
    return [prefix + "".join(f"-{str(n).zfill(w)}" for w in rest) for n in range(1, top)]


def route_shape(code: str) -> str:
    """The segment lengths of a printed code, "3-3-2" for 312-Q02-05: the shape a reader must accept."""
    return "-".join(str(len(s)) for s in code.split("-"))


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


class _Waybills:
    """Waybill numbers in the plan's courier formats that are in no pre-advice and on no other parcel."""

    def __init__(self, plan, seed: int, taken):
        import random

        from fastpath.plan_file import read_plan_file
        from fastpath.samples import courier_formats_of
        self.formats = courier_formats_of(read_plan_file(plan.path, plan.n_chutes))
        self.rng = random.Random(seed)
        self.taken = set(taken)

    def __call__(self) -> str | None:
        from fastpath.samples import waybill_from_masks
        if not self.formats:
            return None
        while True:
            _, masks, s10 = self.rng.choice(self.formats)
            number = waybill_from_masks(self.rng, masks, s10)
            if number not in self.taken:
                self.taken.add(number)
                return number


def _check_shares(**shares) -> None:
    for name, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be a share from 0 to 1, got {share:g}")
    if shares["no_label_share"] + shares["unknown_route_share"] > 1.0:
        raise ValueError(f"no_label_share {shares['no_label_share']:g} and unknown_route_share "
                         f"{shares['unknown_route_share']:g} add up to more than every parcel: lower one")


def label_stream(plan, seed: int, no_label_share: float, unknown_route_share: float,
                 preadvice_share: float = 1.0, tier: str = "clean"):
    """An endless stream of parcel labels; the same seed gives the same parcels.

    Parcels lying label-down and parcels with a routing code the plan does not know come first,
    by their shares. Of the others, `preadvice_share` carry a waybill of the plan's pre-advice
    (while its records last); the rest carry a waybill in one of the plan's courier formats that
    no pre-advice holds, so only the label routes them: their routing codes are drawn rule by rule,
    so that every shape of code the plan routes appears in proportion to its rules.
    """
    from vision.synth import LabelTruth, random_truth
    _check_shares(no_label_share=no_label_share, unknown_route_share=unknown_route_share,
                  preadvice_share=preadvice_share)
    rng = np.random.default_rng(seed)
    # Rules are drawn from a generator of their own, so that the parcels' kinds (label-down,
    # unknown code, pre-advised) come out of `rng` as they always have for a seed.
    rule_rng = np.random.default_rng([seed, 1])
    routes = printed_routes(plan)
    by_destination: dict[str, list[tuple[str, ...]]] = {}
    for route in routes:
        by_destination.setdefault(route.destination, []).append(route.codes)
    unknown = [f"{rng.integers(900, 999)}-Z{rng.integers(10, 99)}-{rng.integers(10, 99)}" for _ in range(20)]
    records = preadvised_records(plan)
    order = list(rng.permutation(len(records)))
    waybills = _Waybills(plan, seed, (w for w, _ in records))
    exceptions = no_label_share + unknown_route_share
    preadvised_below = 1.0 - (1.0 - exceptions) * (1.0 - preadvice_share)
    while True:
        u = rng.random()
        if u < no_label_share:
            yield ParcelLabel(None, "no-label")
        elif u < exceptions:
            yield ParcelLabel(random_truth(rng, routing_codes=unknown), tier)
        elif u < preadvised_below and order:
            waybill, destination = records[order.pop()]
            choices = by_destination.get(destination) or [r.codes for r in routes]
            base = random_truth(rng, routing_codes=choices[int(rule_rng.integers(0, len(choices)))])
            yield ParcelLabel(LabelTruth(_label_courier(waybill, base.courier), waybill, base.routing_code),
                              tier, preadvised=True)
        else:
            route = routes[int(rule_rng.integers(0, len(routes)))]
            base = random_truth(rng, routing_codes=route.codes)
            waybill = waybills() or base.waybill
            yield ParcelLabel(LabelTruth(_label_courier(waybill, base.courier), waybill, base.routing_code), tier)


def _label_courier(waybill: str, fallback: str) -> str:
    """The courier whose label layout the generator draws for `waybill`; `fallback` when it has none."""
    from vision.waybill import COURIERS, courier_of
    courier = courier_of(waybill)
    return courier if courier in COURIERS else fallback


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
        return self.decide(label)[0]

    def decide(self, label: ParcelLabel) -> tuple[tuple[int, ...], str]:
        """(the chutes, the plan's reason for them: PREADVICE, ROUTING_CODE, NO_READ, ...)."""
        if label.truth is None:
            return (self.plan.special["no_read"],), self.reason.NO_READ.name
        d = self.router.decide([label.truth.waybill], label.truth.routing_code)
        if d.reason == self.reason.COURIER_OVERRIDE:
            return tuple(next(g for g in self.overrides if d.chute in g)), d.reason.name
        if d.reason in (self.reason.PREADVICE, self.reason.ROUTING_CODE, self.reason.COURIER_RULE):
            return tuple(self.by_destination[d.destination]), d.reason.name
        return (d.chute,), d.reason.name
