"""The shift's ground truth: for every parcel, where it should have gone, where it went, and why.

`correct` is physical: the parcel is in one of the chutes the sort plan allows for what is really
printed on it. A parcel that is not says why, in one of these outcomes:
    misrouted          diverted where the controller said, but the controller said the wrong chute
    late               no assignment before the decision point (PLC result LATE)
    no_heartbeat       the controller's heartbeat was lost: the PLC rejected it on its own
    chute_unavailable  the assigned chute was full, faulted or disabled when the diverter was due
    invalid_assignment the controller named a chute that does not exist
    lost               tracking lost: taken off the belt in a jam, or forgotten in a PLC restart
    on_belt            still on the belt when the shift ended
Each record also says whether the parcel's waybill was pre-advised and `path`, the plan's reason
for its expected chutes (PREADVICE, ROUTING_CODE, COURIER_RULE, COURIER_OVERRIDE, NO_RULE,
NO_READ): how a perfect read of its label would have been decided.
"""
import numpy as np

from drivers.regmap import DivertResult, Refusal

OUTCOME_OF_RESULT = {
    DivertResult.LATE: "late", DivertResult.NO_HEARTBEAT: "no_heartbeat",
    DivertResult.CHUTE_UNAVAILABLE: "chute_unavailable", DivertResult.INVALID_ASSIGNMENT: "invalid_assignment",
    DivertResult.LOST: "lost",
}
DIVERT_TOLERANCE_MS = 5.0


def _pct(values, q):
    return float(np.percentile(values, q)) if values else None


def _reason_name(code: int) -> str:
    from fastpath import Reason
    try:
        return Reason(code).name
    except ValueError:
        return f"REASON_{code}"


def _why(p, label, correct: bool) -> tuple[str, str]:
    """(outcome, a sentence for people) for one parcel."""
    if p.result is None:
        return "on_belt", "still on the belt when the shift ended"
    if p.result == DivertResult.DIVERTED:
        if correct:
            return "ok", ""
        read = "no label facing the camera" if label.truth is None else \
            f"label {label.truth.waybill} / {label.truth.routing_code}"
        return "misrouted", (f"the controller chose chute {p.assigned_chute} ({_reason_name(p.assigned_reason)}) "
                             f"for {read}, which belongs in chute(s) {', '.join(map(str, p.expected_chute))}")
    outcome = OUTCOME_OF_RESULT[p.result]
    if p.result == DivertResult.LATE:
        late = [t for r, _, t in p.refused if r == Refusal.LATE]
        why = "no assignment before the decision point"
        if late:
            why += f"; one came {(late[0] - p.scan_time_s) * 1000:.0f} ms after the scan, too late"
    elif p.result == DivertResult.NO_HEARTBEAT:
        why = "the controller's heartbeat was lost at the decision point: the PLC sent it to the end chute"
    elif p.result == DivertResult.CHUTE_UNAVAILABLE:
        why = f"chute {p.assigned_chute} was {p.unavailable} when its diverter was due"
    elif p.result == DivertResult.INVALID_ASSIGNMENT:
        why = f"the controller assigned chute {p.invalid_assignment}, which this line does not have"
    else:
        why = p.why_lost or "tracking lost"
    return ("ok" if correct else outcome), why


def account(parcels, counters=None, *, rate_per_h=None, faults=(), camera=None) -> dict:
    """The shift report from the PLC's parcels (finished and still tracked), each carrying its truth."""
    rows, by_reason, rejects, wrong = [], {}, {}, {}
    correct = clean = clean_ok = landed = lost = 0
    latencies, divert_err = [], []
    for p in sorted(parcels, key=lambda p: (p.scan_time_s, p.tracking)):
        label = p.truth.label
        ok = p.result is not None and p.result != DivertResult.LOST and p.actual_chute in p.expected_chute
        outcome, why = _why(p, label, ok)
        if p.result is None or p.result == DivertResult.LOST:
            lost += 1
        else:
            landed += 1
        if p.result == DivertResult.DIVERTED:
            reason = _reason_name(p.assigned_reason)
        else:
            reason = p.result.name if p.result is not None else "ON_BELT"
            rejects[reason] = rejects.get(reason, 0) + 1
        by_reason[reason] = by_reason.get(reason, 0) + 1
        if not ok:
            wrong[outcome] = wrong.get(outcome, 0) + 1
        correct += ok
        if label.truth is not None and label.tier == "clean":
            clean += 1
            clean_ok += ok
        assign_ms = None if p.assigned_at_s is None else (p.assigned_at_s - p.scan_time_s) * 1000
        if assign_ms is not None:
            latencies.append(assign_ms)
        err_ms = None if p.divert_error_s is None else p.divert_error_s * 1000
        if err_ms is not None:
            divert_err.append(err_ms)
        arrival = p.truth.arrival
        rows.append({"tracking": p.tracking, "plc_boot": p.boot_id, "index": p.truth.index, "tier": label.tier,
                     "scan_s": round(p.scan_time_s, 3),
                     "courier": label.truth.courier if label.truth else None,
                     "waybill": label.truth.waybill if label.truth else None,
                     "routing_code": label.truth.routing_code if label.truth else None,
                     "preadvised": label.preadvised, "path": p.truth.path,
                     "length_mm": round(arrival.length_m * 1000), "weight_kg": arrival.weight_kg,
                     "expected": list(p.expected_chute), "assigned": p.assigned_chute or None,
                     "actual": p.actual_chute, "result": p.result.name if p.result is not None else None,
                     "reason": reason, "correct": ok, "outcome": outcome, "why": why,
                     "refused": [r.name for r, _, _ in p.refused],
                     "assign_ms": None if assign_ms is None else round(assign_ms, 3),
                     "divert_error_ms": None if err_ms is None else round(err_ms, 3)})
    n = len(rows)
    abs_err = [abs(e) for e in divert_err]
    return {
        "parcels": n, "landed": landed, "lost": lost, "rate_per_h": rate_per_h,
        "correct": correct, "accuracy": correct / n if n else None,
        "clean_labels": clean, "clean_correct": clean_ok, "clean_accuracy": clean_ok / clean if clean else None,
        "by_reason": dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
        "rejects": dict(sorted(rejects.items(), key=lambda kv: -kv[1])),
        "wrong": dict(sorted(wrong.items(), key=lambda kv: -kv[1])),
        "late": by_reason.get("LATE", 0),
        "late_assignments": sum(1 for r in rows if "LATE" in r["refused"]),
        "assign_latency_ms": {"p50": _pct(latencies, 50), "p99": _pct(latencies, 99),
                              "max": max(latencies) if latencies else None},
        "divert_error_ms": {"diverts": len(divert_err), "p50": _pct(divert_err, 50), "p99": _pct(abs_err, 99),
                            "max_abs": max(abs_err) if abs_err else None,
                            f"within_{DIVERT_TOLERANCE_MS:g}ms": sum(e <= DIVERT_TOLERANCE_MS for e in abs_err)},
        "plc_refused": vars(counters) if counters is not None else {},
        "faults": list(faults),
        "camera": camera or {},
        "records": rows,
    }
