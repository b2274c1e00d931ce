"""Where the parcels of a simulated shift went, by the way the plan decides them.

The simulated PLC's report carries each parcel's truth: what its label prints, whether its
waybill was pre-advised, and `path`, the plan's reason for its right chutes (a perfect read
would be decided by pre-advice, the routing code, a courier rule or override, or be an
exception: no label, a code no rule knows). The controller's own reason (`reason`) says what
it could read; comparing the two is what this module does. Each parcel is counted once:
    right            in a chute the plan gives what is printed on it
    exception_chute  not right, in one of the plan's exception chutes (no read, no rule,
                     overflow, reject, end of line): the controller knew it did not know
    courier_rule     not right, sent by the courier's fallback rule (only the courier was read)
    wrong_chute      not right, in another route's chute: a misread, or a courier override
                     missed because the waybill was not read
    lost             never landed (tracking lost, still on the belt)
"""
import collections

from sim_plc.labels import route_shape

PATHS = {"PREADVICE": "preadvice", "ROUTING_CODE": "routing_code", "COURIER_RULE": "courier_rule",
         "COURIER_OVERRIDE": "courier_override"}          # any other reason: "exception"
OUTCOMES = ("right", "exception_chute", "courier_rule", "wrong_chute", "lost")
WRONG_EXAMPLES = 5


def exception_chutes(plan_special: dict, end_chute: int) -> frozenset[int]:
    return frozenset([*plan_special.values(), end_chute])


def outcome(record: dict, exceptions: frozenset[int]) -> str:
    if record["correct"]:
        return "right"
    if record["result"] in (None, "LOST"):
        return "lost"
    if record["result"] != "DIVERTED" or record["actual"] in exceptions:
        return "exception_chute"
    if record["reason"] == "COURIER_RULE":
        return "courier_rule"
    return "wrong_chute"


def _tally(records, exceptions) -> dict:
    counts = collections.Counter(outcome(r, exceptions) for r in records)
    row = {"parcels": len(records), **{o: counts.get(o, 0) for o in OUTCOMES}}
    row["right_share"] = round(row["right"] / len(records), 4) if records else None
    # What the controller could make of them: its own reason per parcel.
    row["decided_by"] = dict(collections.Counter(r["reason"] for r in records).most_common())
    return row


def label_misses(records: list[dict], exceptions: frozenset[int], reads: dict, budget_ms: float) -> dict:
    """The parcels only their label could route that missed the right chute, with what the
    controller's own record says: a routing code read or not, and how long the read took
    (waiting for a free reader included) against the reading budget. Reads that ran to the
    budget point at the machine's load; short reads without a code, at the reader."""
    misses = [r for r in records if PATHS.get(r["path"]) in ("routing_code", "courier_override")
              and outcome(r, exceptions) != "right"]
    found = [reads.get((r["plc_boot"], r["tracking"])) for r in misses]
    found = [f for f in found if f is not None]
    read_ms = sorted(f["read_ms"] for f in found if f["read_ms"] is not None)
    return {"parcels": len(misses), "recorded": len(found),
            "routing_code_not_read": sum(f["routing_code"] is None for f in found),
            "budget_ms": budget_ms, "reads_at_budget": sum(ms >= budget_ms for ms in read_ms),
            "read_ms_p50": round(read_ms[len(read_ms) // 2], 1) if read_ms else None,
            "read_ms_max": round(read_ms[-1], 1) if read_ms else None}


def decision_paths(records: list[dict], exceptions: frozenset[int]) -> dict:
    """Parcels per decision path and outcome, the routing-code path per printed shape, the parcels
    with a label facing the camera as a whole, and a few wrong-chute parcels to look at."""
    by_path = collections.defaultdict(list)
    for r in records:
        by_path[PATHS.get(r["path"], "exception")].append(r)
    by_shape = collections.defaultdict(list)
    for r in by_path.get("routing_code", []):
        by_shape[route_shape(r["routing_code"])].append(r)
    readable = [r for r in records if r["waybill"] is not None]      # a label faces the camera
    wrong = [r for r in records if outcome(r, exceptions) == "wrong_chute"]
    return {
        "preadvised_share": round(sum(r["preadvised"] for r in records) / len(records), 4) if records else None,
        "by_path": {path: _tally(rows, exceptions) for path, rows in sorted(by_path.items())},
        "routing_code_by_shape": {shape: _tally(rows, exceptions) for shape, rows in sorted(by_shape.items())},
        "readable_label": _tally(readable, exceptions),
        "wrong_chute_examples": [{k: r[k] for k in ("index", "waybill", "routing_code", "path", "reason",
                                                    "expected", "actual")} for r in wrong[:WRONG_EXAMPLES]],
    }
