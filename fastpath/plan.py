"""A checked sort plan compiled into the lookup structures both routing cores read.

The Plan is immutable once built: a reload builds a new one (off the event loop) and the
Router swaps it in between two decisions.
"""
import bisect
import os
import sys
import time

import numpy as np

from . import couriers as courier_formats
from . import hashtable
from . import preadvice as preadvice_data
from . import routing_code
from . import waybill as waybill_codes
from .plan_file import SPREADS, read_plan_file

RANGE_ROOT_KEY = -1          # ranges of single-segment codes: the parent is empty
MAX_LISTED_RANGE = 200       # longest range whose every code goes into routing_codes
RETIRE_STEP_ENTRIES = 2000   # entries a step of retire() frees: about 0.1 ms
RETIRE_SLICE_S = 0.0001      # a slice of steps on the loop starts no step after this


class Plan:
    """Public: path, version, name, n_chutes, special, couriers, destinations, routing_codes,
    routing_shapes, warnings, preadvice_count, weights, built_by_pid (the process that built it: the
    router's off-loop loader builds in a child process). The rest is read by the routing cores."""

    def __init__(self, spec, preadvice):
        self.built_by_pid = os.getpid()
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
        self.weights = dict(spec.weights)          # [weights]: applied by the controller (edge/weight_rule.py)
        self.routing_shapes = _routing_shapes(self.routing_codes)
        self._compile_couriers(spec)
        self._compile_groups(spec)
        self._compile_routes(spec)
        self.flat = FlatTables(self)

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

    def preadvice_destination(self, read):
        """Destination name the couriers' pre-advice gives one waybill read (str or bytes), or None.

        Where it gives one, the printed routing code cannot change the decision: pre-advice
        comes first. A plain lookup (microseconds), for callers outside the routing core.
        """
        canon = waybill_codes.canonical(read)
        if not canon:
            return None
        key = waybill_codes.encode(canon)
        index = self.preadvice.table.get(key) if key else self.preadvice.slow.get(canon, 0)
        return self.destinations[index - 1] if index else None

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



class FlatTables:
    """The plan as flat numpy arrays for the compiled core, built with the plan (in the reload
    thread) so that making an engine from it only takes views.

    Route tables hold only rules whose key fits a 64-bit code; longer codes go the slow way
    (Plan.route) and only longer codes can match those rules.
    """

    def __init__(self, plan):
        self._routes(plan)
        self._couriers(plan)
        self._groups(plan)

    def _couriers(self, plan):
        # Candidate formats per (length, class of the first character), in file order: a
        # waybill only tries the formats that can match its length and first character.
        entries = plan.courier_table.entries
        buckets = {}
        for i, (_, masks, _) in enumerate(entries):
            for cls in range(courier_formats.N_CLASSES):
                if masks[0] >> cls & 1:
                    buckets.setdefault(len(masks) * courier_formats.N_CLASSES + cls, []).append(i)
        n_buckets = (courier_formats.MAX_FORMAT_LEN + 1) * courier_formats.N_CLASSES
        self.format_first = np.zeros(n_buckets + 1, np.int32)
        candidates = []
        for bucket in range(n_buckets):
            self.format_first[bucket] = len(candidates)
            candidates.extend(buckets.get(bucket, ()))
        self.format_first[n_buckets] = len(candidates)
        self.format_candidates = np.array(candidates or [0], np.int32)
        self.format_courier = np.array([c for c, _, _ in entries] or [0], np.int32)
        self.format_s10 = np.array([s for _, _, s in entries] or [0], np.uint8)
        width = courier_formats.MAX_FORMAT_LEN
        self.format_masks = np.zeros(max(1, len(entries)) * width, np.uint64)
        for i, (_, masks, _) in enumerate(entries):
            self.format_masks[i * width:i * width + len(masks)] = masks
        self.courier_rule = np.array(plan.courier_rule, np.int32)

    def _groups(self, plan):
        counts = [len(group) for group in plan.group_chutes]
        self.group_count = np.array(counts, np.int32)
        self.group_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        self.group_chutes = np.array([c for group in plan.group_chutes for c in group] or [0], np.int32)
        self.group_policy = np.array(plan.group_policy, np.uint8)
        self.override_stride = len(plan.destinations) + 1
        self.override_group = np.zeros((len(plan.couriers) + 1) * self.override_stride, np.int32)
        for (courier, destination), group in plan.override_group.items():
            self.override_group[courier * self.override_stride + destination] = group

    def _routes(self, plan):
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
        # One dummy entry keeps the arrays non-empty for the typed views.
        self.range_start = np.asarray(starts or [0], dtype=np.int32)
        self.range_count = np.asarray(counts or [0], dtype=np.int32)
        self.range_low = np.asarray(lows or [0], dtype=np.int64)
        self.range_high = np.asarray(highs or [0], dtype=np.int64)
        self.range_destination = np.asarray(destinations or [0], dtype=np.uint16)


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
            # The low end as the plan writes it (spaces, Chinese words): its last segment's width.
            width = len(routing_code.split_rule_code(rule.text.split("..")[0])[-1])
            parent = rule.canon.decode("ascii")
            numbers = range(rule.low, min(rule.high, rule.low + MAX_LISTED_RANGE - 1) + 1)
            codes.extend((f"{parent}-" if parent else "") + str(n).zfill(width) for n in numbers)
        else:
            codes.append(rule.canon.decode("ascii"))
    return list(dict.fromkeys(codes))


def _routing_shapes(codes):
    """The segment lengths of the plan's full routing codes (three segments or more), (3, 3, 2)
    for 312-Q02-05: the label readers accept printed codes of these shapes only, since a code
    read with a character lost or two merged into one takes another. None when the plan has no
    full code (prefix rules of two segments only): any shape is accepted then."""
    shapes = frozenset(tuple(len(s) for s in code.split("-")) for code in codes if code.count("-") >= 2)
    return shapes or None


def retire(plan, loop):
    """Free a plan that has been replaced, on `loop` in slices between two parcels.

    A plan with hundreds of thousands of routing codes holds as many Python objects; the last
    reference to it dropping frees them all at once, 20 ms measured for a 16 MB plan, with the
    loop held all that time. Its lists and dicts are emptied here a few thousand entries a
    step instead. Only what no one else holds is taken apart: a plan (or one of its tables)
    still used elsewhere is left whole, and freed wherever its last user drops it. The caller
    must hold no reference of its own to the plan after this call.
    """
    steps = _retire_steps([plan])
    del plan

    def slice_():
        started = time.perf_counter()
        for _ in steps:
            if time.perf_counter() - started >= RETIRE_SLICE_S:
                loop.call_soon(slice_)      # parcels waiting meanwhile go first
                return
    loop.call_soon(slice_)


def _retire_steps(holder):
    plan = holder.pop()
    # Referenced here and by getrefcount's argument: nobody else holds the plan.
    if sys.getrefcount(plan) > 2:
        return
    owners = [plan] + [part for part in (vars(plan).get("preadvice"),) if part is not None]
    for owner in owners:
        for name in list(vars(owner)):
            value = vars(owner)[name]
            if not isinstance(value, (list, dict)) or len(value) <= RETIRE_STEP_ENTRIES:
                continue
            # The owner's attribute, `value` and getrefcount's argument: anything more is another user.
            if sys.getrefcount(value) > 3:
                continue
            while value:
                if isinstance(value, list):
                    del value[-RETIRE_STEP_ENTRIES:]
                else:
                    for _ in range(min(RETIRE_STEP_ENTRIES, len(value))):
                        value.popitem()
                yield
        yield


def load_plan(path, n_chutes):
    """Read, check and compile a plan file and its pre-advice files, in this process; raises
    PlanError. Router.build_and_swap hands its builds a loader that runs this off the event loop
    (offloop_build.py)."""
    spec = read_plan_file(path, n_chutes)
    destination_index = {name: i for i, (name, _, _) in enumerate(spec.destinations, start=1)}
    if spec.preadvice_files:
        pre = preadvice_data.load(spec.preadvice_files, destination_index, spec.path)
    else:
        pre = preadvice_data.empty()
    return Plan(spec, pre)


def load_reading_rules(path, n_chutes):
    """The plan without its pre-advice: what a label reader needs (courier formats, routing code
    shapes) in milliseconds, however large the pre-advice files are. Raises PlanError for the plan
    file itself; its pre-advice files are neither read nor checked."""
    return Plan(read_plan_file(path, n_chutes), preadvice_data.empty())
