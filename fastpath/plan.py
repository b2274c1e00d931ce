"""A checked sort plan compiled into the lookup structures both routing cores read.

The Plan is immutable once built: a reload builds a new one (off the event loop) and the
Router swaps it in between two decisions.
"""
import bisect
import numpy as np

from . import couriers as courier_formats
from . import hashtable
from . import preadvice as preadvice_data
from . import routing_code
from .plan_file import SPREADS, read_plan_file

RANGE_ROOT_KEY = -1          # ranges of single-segment codes: the parent is empty
MAX_LISTED_RANGE = 200       # longest range whose every code goes into routing_codes


class Plan:
    """Public: path, version, name, n_chutes, special, couriers, destinations, routing_codes,
    warnings, preadvice_count. The rest is read by the routing cores."""

    def __init__(self, spec, preadvice):
        self.path = spec.path
        self.version = spec.version
        self.name = spec.name
        self.n_chutes = spec.n_chutes
        self.special = dict(spec.special)
        self.special["unavailable"] = spec.special["overflow"]
        self.couriers = [name for name, _, _ in spec.couriers]
        self.destinations = [name for name, _, _ in spec.destinations]
        self.preadvice = preadvice
        self.preadvice_count = preadvice.count
        self.warnings = list(preadvice.warnings)
        self.routing_codes = _routing_codes(spec.routes)
        self._compile_couriers(spec)
        self._compile_groups(spec)
        self._compile_routes(spec)

    def __repr__(self):
        return (f"<Plan {self.name!r} version {self.version!r}: {self.n_chutes} chutes, "
                f"{len(self.destinations)} destinations, {self.preadvice_count} pre-advice records>")

    def _compile_couriers(self, spec):
        entries = []
        for index, (_, formats, s10) in enumerate(spec.couriers, start=1):
            entries.extend((index, masks, False) for masks in formats)
            if s10:
                entries.append((index, courier_formats.S10_MASKS, True))
        self.courier_table = courier_formats.CourierTable(self.couriers, entries)
        destination_index = {name: i for i, name in enumerate(self.destinations, start=1)}
        self.courier_rule = [0] * (len(self.couriers) + 1)
        for courier, destination in spec.courier_rules.items():
            self.courier_rule[self.couriers.index(courier) + 1] = destination_index[destination]

    def _compile_groups(self, spec):
        """Chute groups: group d (1..D) is destination d; overrides follow. Group 0 is empty."""
        self.group_chutes = [()]
        self.group_policy = [0]
        for _, chutes, spread in spec.destinations:
            self.group_chutes.append(tuple(chutes))
            self.group_policy.append(SPREADS.index(spread))
        self.override_group = {}
        destination_index = {name: i for i, name in enumerate(self.destinations, start=1)}
        for override in spec.overrides:
            group = len(self.group_chutes)
            self.group_chutes.append(tuple(override.chutes))
            self.group_policy.append(SPREADS.index(spec.spread))
            courier = self.couriers.index(override.courier) + 1
            for name in override.destinations or [None]:
                self.override_group[(courier, destination_index.get(name, 0))] = group

    def _compile_routes(self, spec):
        destination_index = {name: i for i, name in enumerate(self.destinations, start=1)}
        self.exact_routes = {}
        self.prefix_routes = {}
        self.range_routes = {}
        for rule in spec.routes:
            destination = destination_index[rule.destination]
            if rule.kind == "code":
                self.exact_routes[rule.canon] = destination
            elif rule.kind == "prefix":
                self.prefix_routes[rule.canon] = destination
            else:
                self.range_routes.setdefault(rule.canon, []).append((rule.low, rule.high, destination))
        for spans in self.range_routes.values():
            spans.sort()
        self.range_lows = {parent: [low for low, _, _ in spans] for parent, spans in self.range_routes.items()}

    def route(self, canon):
        """Destination index for a canonical routing code: exact, then range, then longest prefix."""
        destination = self.exact_routes.get(canon)
        if destination:
            return destination
        parts = routing_code.range_parts(canon)
        if parts is not None and parts[0] in self.range_routes:
            spans = self.range_routes[parts[0]]
            at = bisect.bisect_right(self.range_lows[parts[0]], parts[1]) - 1
            if at >= 0 and spans[at][1] >= parts[1]:
                return spans[at][2]
        segments = canon.split(b"-")
        for end in range(len(segments), 0, -1):
            destination = self.prefix_routes.get(b"-".join(segments[:end]))
            if destination:
                return destination
        return 0

    def compiled_tables(self):
        """The route rules as flat numpy tables keyed by 64-bit routing codes (built once)."""
        cached = getattr(self, "_compiled_tables", None)
        if cached is None:
            cached = self._compiled_tables = _RouteTables(self)
        return cached


class _RouteTables:
    """Only rules whose key fits a 64-bit code; longer codes go the slow way (Plan.route)."""

    def __init__(self, plan):
        self.exact = _code_table(plan.exact_routes)
        self.prefix = _code_table(plan.prefix_routes)
        parents, lows, highs, destinations, starts, counts = [], [], [], [], [], []
        for parent, spans in plan.range_routes.items():
            key = routing_code.encode(parent) if parent else RANGE_ROOT_KEY
            if key == 0:
                continue
            parents.append(key)
            starts.append(len(lows))
            counts.append(len(spans))
            for low, high, destination in spans:
                lows.append(low)
                highs.append(high)
                destinations.append(destination)
        self.range_parent = hashtable.build(parents, np.arange(1, len(parents) + 1), np.uint32)
        self.range_start = np.asarray(starts, dtype=np.int32)
        self.range_count = np.asarray(counts, dtype=np.int32)
        self.range_low = np.asarray(lows, dtype=np.int64)
        self.range_high = np.asarray(highs, dtype=np.int64)
        self.range_destination = np.asarray(destinations, dtype=np.uint16)


def _code_table(routes):
    keys, values = [], []
    for canon, destination in routes.items():
        key = routing_code.encode(canon)
        if key:
            keys.append(key)
            values.append(destination)
    return hashtable.build(keys, values)


def _routing_codes(routes):
    codes = []
    for rule in routes:
        if rule.kind == "range":
            width = len(rule.text.split("..")[0].rsplit("-", 1)[-1])
            parent = rule.canon.decode("ascii")
            numbers = range(rule.low, min(rule.high, rule.low + MAX_LISTED_RANGE - 1) + 1)
            codes.extend((f"{parent}-" if parent else "") + str(n).zfill(width) for n in numbers)
        else:
            codes.append(rule.canon.decode("ascii"))
    return list(dict.fromkeys(codes))


def load_plan(path, n_chutes):
    """Read, check and compile a plan file and its pre-advice files; raises PlanError."""
    spec = read_plan_file(path, n_chutes)
    destination_index = {name: i for i, (name, _, _) in enumerate(spec.destinations, start=1)}
    if spec.preadvice_files:
        pre = preadvice_data.load(spec.preadvice_files, destination_index, spec.path)
    else:
        pre = preadvice_data.empty()
    return Plan(spec, pre)
