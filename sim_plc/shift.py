"""A simulated shift: parcels arrive at the scan photo-eye, the PLC sorts them, the truth is kept.

Every parcel's expected chute comes from the sort plan applied to what is really printed on its
label, so a run can say how many parcels went where they should, and why the others did not.
"""
import asyncio
import json
import logging
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivers.regmap import DivertResult

from .camera import FolderCamera, ParcelLabel, render_all
from .model import Parcel, PlcModel
from .modbus_server import ModbusPlcServer

log = logging.getLogger("sortline.sim")


@dataclass(frozen=True)
class ShiftSpec:
    parcels: int = 240
    rate_per_h: float = 12000.0
    arrivals: str = "fixed"          # "fixed" pitch or "poisson"
    seed: int = 1
    no_label_share: float = 0.03     # parcels lying label-down
    unknown_route_share: float = 0.04  # routing codes the plan does not know
    not_preadvised_share: float = 0.0  # parcels only the printed routing code can route
    tier: str = "clean"


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


def make_labels(spec: ShiftSpec, plan) -> list[ParcelLabel]:
    """Mostly pre-advised parcels (couriers send waybill -> destination ahead), then the exceptions."""
    from vision.synth import LabelTruth, random_truth
    from vision.waybill import courier_of
    rng = np.random.default_rng(spec.seed)
    codes = printable_codes(plan)
    known = sorted(c for cs in codes.values() for c in cs)
    unknown = [f"{rng.integers(900, 999)}-Z{rng.integers(10, 99)}-{rng.integers(10, 99)}" for _ in range(20)]
    records = preadvised_records(plan)
    order = list(rng.permutation(len(records)))
    labels = []
    for _ in range(spec.parcels):
        u = rng.random()
        if u < spec.no_label_share:
            labels.append(ParcelLabel(None, "no-label"))
        elif u < spec.no_label_share + spec.unknown_route_share:
            labels.append(ParcelLabel(random_truth(rng, routing_codes=unknown), spec.tier))
        elif u < 1.0 - spec.not_preadvised_share and order:
            waybill, destination = records[order.pop()]
            base = random_truth(rng, routing_codes=codes.get(destination) or known)
            labels.append(ParcelLabel(LabelTruth(courier=courier_of(waybill) or base.courier,
                                                 waybill=waybill, routing_code=base.routing_code), spec.tier))
        else:
            labels.append(ParcelLabel(random_truth(rng, routing_codes=known), spec.tier))
    return labels


def arrival_gaps_s(spec: ShiftSpec) -> np.ndarray:
    mean = 3600.0 / spec.rate_per_h
    if spec.arrivals == "fixed":
        return np.full(spec.parcels, mean)
    if spec.arrivals == "poisson":
        rng = np.random.default_rng(spec.seed + 1)
        # Parcels cannot overlap on the belt: keep a minimum gap of a third of the mean.
        return np.maximum(rng.exponential(mean, spec.parcels), mean / 3)
    raise ValueError(f"unknown arrivals {spec.arrivals!r}: use fixed or poisson")


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


async def run_shift(config, spec: ShiftSpec, report_path=None, host="127.0.0.1", port=None) -> dict:
    from fastpath import load_plan
    plan = load_plan(config.resolve(config["plan"]["file"]), n_chutes=len(config.geometry.chutes))
    expect = Expectation(plan)
    labels = make_labels(spec, plan)
    expected = [expect(label) for label in labels]
    log.info("rendering %d label images ahead of the run", len(labels))
    images = render_all(labels, spec.seed)
    camera = FolderCamera(config["camera"]["folder"])
    camera.clear()

    server = ModbusPlcServer(host, port or config["plc"]["port"], _regmap(config))
    await server.start()
    model = PlcModel(config.geometry, server.registers, server.map,
                     heartbeat_timeout_s=config["plc"]["heartbeat_timeout_ms"] / 1000)
    server.bind_model(model.on_edge_write)
    model.start()
    log.info("simulated PLC listening on %s:%d (Modbus TCP)", host, server.port)
    try:
        await _wait_for_controller(model)
        loop = asyncio.get_running_loop()
        t = loop.time() + 0.2
        for i, gap in enumerate(arrival_gaps_s(spec)):
            await asyncio.sleep(max(0.0, t - loop.time()))
            p = model.scan(labels[i], expected[i])
            camera.drop(p.tracking, images[i])
            t += gap
        while model.parcels:
            await asyncio.sleep(0.05)
    finally:
        await model.stop()
        await server.stop()
    report = account(model.finished, spec, model.counters)
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=1))
    return report


def _regmap(config):
    from drivers.regmap import RegisterMap
    return RegisterMap(config["plc"]["plc_base"], config["plc"]["edge_base"])


async def _wait_for_controller(model: PlcModel, timeout_s: float = 60.0) -> None:
    """Parcels start flowing once the controller's heartbeat is seen, as a line would start."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not model.edge_alive():
        if loop.time() > deadline:
            raise TimeoutError(f"no controller heartbeat within {timeout_s:.0f} s: is `sortline run` started?")
        await asyncio.sleep(0.05)


def _pct(values, q):
    if not values:
        return None
    return float(np.percentile(values, q))


def account(finished: list[Parcel], spec: ShiftSpec, counters) -> dict:
    from fastpath import Reason
    by_reason, rows = {}, []
    clean = clean_ok = ok = 0
    latencies = []
    for p in sorted(finished, key=lambda p: p.tracking):
        label: ParcelLabel = p.truth
        correct = p.actual_chute in p.expected_chute
        if p.result == DivertResult.DIVERTED:
            reason = Reason(p.assigned_reason).name if p.assigned_reason in Reason._value2member_map_ \
                else f"REASON_{p.assigned_reason}"
        else:
            reason = p.result.name
        by_reason[reason] = by_reason.get(reason, 0) + 1
        ok += correct
        if label.truth is not None and label.tier == "clean":
            clean += 1
            clean_ok += correct
        if p.assigned_at_s is not None:
            latencies.append((p.assigned_at_s - p.scan_time_s) * 1000)
        rows.append({"tracking": p.tracking, "tier": label.tier,
                     "waybill": label.truth.waybill if label.truth else None,
                     "routing_code": label.truth.routing_code if label.truth else None,
                     "expected": list(p.expected_chute), "actual": p.actual_chute, "result": p.result.name,
                     "reason": reason, "correct": correct,
                     "assign_ms": None if p.assigned_at_s is None else round((p.assigned_at_s - p.scan_time_s) * 1000, 3),
                     "divert_error_ms": None if p.divert_error_s is None else round(p.divert_error_s * 1000, 3)})
    divert_err = [abs(r["divert_error_ms"]) for r in rows if r["divert_error_ms"] is not None]
    return {
        "parcels": spec.parcels, "landed": len(finished), "lost": spec.parcels - len(finished),
        "rate_per_h": spec.rate_per_h, "correct": ok,
        "clean_labels": clean, "clean_correct": clean_ok,
        "clean_accuracy": clean_ok / clean if clean else None,
        "by_reason": dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
        "late": by_reason.get("LATE", 0),
        "assign_latency_ms": {"p50": _pct(latencies, 50), "p99": _pct(latencies, 99),
                              "max": max(latencies) if latencies else None},
        "divert_error_ms": {"p50": _pct(divert_err, 50), "max": max(divert_err) if divert_err else None},
        "plc_refused": vars(counters),
        "records": rows,
    }
