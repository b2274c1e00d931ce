"""`sortline replay`: decide the parcels of a time range again from their records.

    sortline replay --from 2026-11-28T06:00 --to 2026-11-28T14:00             check the records
    sortline replay --from ... --to ... --plan plans/corrected.plan.toml       what another plan does

Each parcel is decided from what its record says was read (waybills, routing code, the symbols of
no courier's format), the way the controller's _handle_scan does it: the pre-advice takes such
symbols as waybills (vision.result.with_preadvised), then the routing core (fastpath.Router, the
compiled core where it is built) decides. Parcels are decided in the order the controller decided
them (record id), so that round-robin turns follow the same sequence.

The records carry the version of the plan that decided each parcel (`plan_version`), not the plan:
the plan files to check them with are the line's (its `[plan] file` and scheduled plans) and any
given with --used-plan; a parcel whose plan version is among none of them is counted apart.

The records do not hold the chute states of the moment (full, faulted, disabled), so a decision
the chute states changed is recognised rather than repeated: a parcel recorded in another chute of
its destination's chutes (the spread's turn, or a full chute skipped), or in the overflow or reject
chute because its chutes were unavailable, agrees with its plan. Anything else is a difference.
"""
import argparse
import csv
import json
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from vision.result import UNKNOWN_FORMAT, LabelRead, with_preadvised

from .weight_rule import weighed_decision

# Decisions that reach a destination's (or a courier override's) chutes.
ROUTED = ("PREADVICE", "ROUTING_CODE", "COURIER_RULE", "COURIER_OVERRIDE")
EXCEPTIONS = ("NO_READ", "MULTI_READ", "NO_RULE")
UNAVAILABLE = ("OVERFLOW", "REJECT")

SELECT = ("SELECT id, plc_boot, tracking, scanned_wall, waybills, routing_code, read_sources, courier, destination,"
          " chute, reason, plan_version, {weights} FROM parcels WHERE scanned_wall >= ? AND scanned_wall < ? ORDER BY id")
# The scale's weighing (records format 3) and the longest side; NULL, NULL in older files.
WEIGHTS = "weight_kg, max(length_mm, width_mm, height_mm)"
WEIGHED = ("OVERWEIGHT", "OVERSIZE")
# What a check finds for one parcel.
SAME, SPREAD, CHUTE_STATE, DIFFERS = "same", "spread", "chute_state", "differs"


class ReplayError(Exception):
    """Input replay cannot work with; the message says what to give instead."""


class Parcel(NamedTuple):
    """One record, as replay needs it (a tuple: a day holds hundreds of thousands)."""
    id: int
    plc_boot: int
    tracking: int
    scanned_wall: float
    waybills: str                # JSON list, as recorded
    routing_code: str | None
    read_sources: str | None     # JSON object, as recorded
    courier: str | None
    destination: str | None
    chute: int
    reason: str
    plan_version: str
    weight_kg: float | None = None
    longest_mm: float | None = None


def load_parcels(records_db: Path, start_wall: float, end_wall: float) -> list[Parcel]:
    """The parcel records scanned in [start_wall, end_wall), in the order they were decided."""
    if not records_db.is_file():
        raise ReplayError(f"{records_db}: no parcel records there; give the line's records folder with --records "
                          f"(the [records] folder of its config)")
    db = sqlite3.connect(f"{records_db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(parcels)")}
        weights = WEIGHTS if "weight_kg" in columns else "NULL, NULL"
        return [Parcel(*row) for row in db.execute(SELECT.format(weights=weights), (start_wall, end_wall))]
    except sqlite3.DatabaseError as exc:
        raise ReplayError(f"{records_db}: not readable as parcel records ({exc})") from None
    finally:
        db.close()


def _unknown_symbols(sources: dict) -> tuple[str, ...]:
    """The texts of symbols of no courier's format, from the record's sources: the readers write
    "SYMBOLOGY text" for each, a parcel decided after with_preadvised the texts alone."""
    named = sources.get(UNKNOWN_FORMAT)
    if not isinstance(named, str) or not named:
        return ()
    return tuple(item.split()[-1] for item in named.split(", ") if item.split())


class Decider:
    """One plan's routing core, deciding recorded reads in record order."""

    def __init__(self, plan, pure: bool | None = None):
        from fastpath import Router
        self.plan = plan
        self.router = Router(plan, pure=pure)
        self._courier = {name: i for i, name in enumerate(plan.couriers, start=1)}
        self._destination = {name: i for i, name in enumerate(plan.destinations, start=1)}

    def decide(self, parcel: Parcel):
        waybills = tuple(json.loads(parcel.waybills))
        if parcel.read_sources and UNKNOWN_FORMAT in parcel.read_sources:
            sources = json.loads(parcel.read_sources)
            read = LabelRead(waybills, parcel.routing_code, None, sources, unknown_format=_unknown_symbols(sources))
            read = with_preadvised(read, lambda text: self.plan.preadvice_destination(text) is not None)
            waybills = read.waybills
        decision = self.router.decide(waybills, parcel.routing_code)
        # The plan's [weights] with the weighing the record kept (none: the scale's came too late).
        return weighed_decision(self.plan, self.router, decision, parcel.weight_kg, parcel.longest_mm)

    def chutes(self, decision) -> tuple[int, ...]:
        """The chutes the plan gives a decision when all are available: the destination's (or the
        override's) for a routed parcel, the special chute for the others."""
        plan = self.plan
        if decision.reason.name not in ROUTED:
            return (decision.chute,)
        courier = self._courier.get(decision.courier, 0)
        destination = self._destination.get(decision.destination, 0)
        group = 0
        if decision.reason.name == "COURIER_OVERRIDE":
            group = plan.override_group.get((courier, destination)) or plan.override_group.get((courier, 0), 0)
        return tuple(plan.group_chutes[group or destination])


def agreement(decider: Decider, parcel: Parcel, decision) -> str:
    """How a recorded decision compares with its plan's decision now (module docstring)."""
    same_why = decision.destination == parcel.destination and decision.reason.name == parcel.reason
    if same_why and decision.chute == parcel.chute:
        return SAME
    if same_why and decision.reason.name in ROUTED and parcel.chute in decider.chutes(decision):
        return SPREAD
    special = decider.plan.special
    if (parcel.reason in UNAVAILABLE and decision.reason.name in ROUTED and decision.destination == parcel.destination
            and parcel.chute == special[parcel.reason.lower()]):
        return CHUTE_STATE
    if same_why and decision.reason.name in EXCEPTIONS + WEIGHED and parcel.chute == special["reject"]:
        return CHUTE_STATE
    return DIFFERS


def _decision_dict(decision, chutes) -> dict:
    return {"chute": decision.chute, "chutes": list(chutes), "reason": decision.reason.name,
            "courier": decision.courier, "destination": decision.destination}


def _recorded_dict(parcel: Parcel) -> dict:
    return {"chute": parcel.chute, "reason": parcel.reason, "courier": parcel.courier,
            "destination": parcel.destination, "plan_version": parcel.plan_version}


def _parcel_dict(parcel: Parcel) -> dict:
    return {"id": parcel.id, "plc_boot": parcel.plc_boot, "tracking": parcel.tracking,
            "scanned_local": _local(parcel.scanned_wall), "waybills": json.loads(parcel.waybills),
            "routing_code": parcel.routing_code}


@dataclass
class Replay:
    """What a replay found: counts, and the parcels that differ or would change."""
    parcels: int = 0
    not_decided: int = 0                       # rows of the PLC's confirmation alone
    by_plan: dict = field(default_factory=dict)        # plan version -> parcels checked with it
    missing_plans: dict = field(default_factory=dict)  # plan version -> parcels without its plan file
    check: dict = field(default_factory=lambda: {SAME: 0, SPREAD: 0, CHUTE_STATE: 0, DIFFERS: 0})
    differences: list = field(default_factory=list)    # records their own plan decides otherwise
    other_plan: str | None = None
    would_change: list = field(default_factory=list)   # parcels the other plan decides otherwise
    changes_by: dict = field(default_factory=dict)     # "destination", "chutes", "reason" -> parcels
    elapsed_s: float = 0.0

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items()}


def replay(parcels: list[Parcel], used: dict, other: Decider | None = None) -> Replay:
    """Decide `parcels` again with the plans that decided them (`used`: plan version -> Decider)
    and, when given, with `other`. Parcels whose plan is not in `used` are counted, not checked;
    with `other` they are compared with their record instead."""
    started = time.perf_counter()
    out = Replay(other_plan=other.plan.version if other else None)
    for parcel in parcels:
        if not parcel.plan_version:
            out.not_decided += 1
            continue
        out.parcels += 1
        decider = used.get(parcel.plan_version)
        before = None
        if decider is None:
            out.missing_plans[parcel.plan_version] = out.missing_plans.get(parcel.plan_version, 0) + 1
        else:
            out.by_plan[parcel.plan_version] = out.by_plan.get(parcel.plan_version, 0) + 1
            decision = decider.decide(parcel)
            found = agreement(decider, parcel, decision)
            out.check[found] += 1
            if found == DIFFERS or other is not None:
                before = _decision_dict(decision, decider.chutes(decision))
            if found == DIFFERS:
                out.differences.append({**_parcel_dict(parcel), "recorded": _recorded_dict(parcel),
                                        "replayed": before})
        if other is not None:
            after_decision = other.decide(parcel)
            after = _decision_dict(after_decision, other.chutes(after_decision))
            base = before or {"chute": parcel.chute, "chutes": [parcel.chute], "reason": parcel.reason,
                              "courier": parcel.courier, "destination": parcel.destination}
            changed = [what for what in ("destination", "chutes", "reason") if base[what] != after[what]]
            if changed:
                for what in changed:
                    out.changes_by[what] = out.changes_by.get(what, 0) + 1
                out.would_change.append({**_parcel_dict(parcel), "recorded": _recorded_dict(parcel),
                                         "used_plan": before, "other_plan": after, "changed": changed})
    out.elapsed_s = round(time.perf_counter() - started, 3)
    return out


# -- the plans ------------------------------------------------------------------------------------------
def load_deciders(paths, n_chutes: int, pure: bool | None = None) -> dict:
    """plan version -> Decider for each plan file; raises ReplayError naming a plan that fails."""
    from fastpath import PlanError, load_plan
    out: dict = {}
    files: dict = {}
    for path in paths:
        try:
            plan = load_plan(path, n_chutes)
        except PlanError as exc:
            raise ReplayError(f"plan {path} cannot be loaded: {exc}") from None
        if plan.version in files and Path(files[plan.version]).resolve() != Path(path).resolve():
            raise ReplayError(f"plans {files[plan.version]} and {path} both say version {plan.version!r}: records "
                              f"name plans by version only; give one of them")
        files[plan.version] = path
        out[plan.version] = Decider(plan, pure)
    return out


def line_plan_files(config) -> list[Path]:
    """The plan files a line may have used: its [plan] file and the files of its schedule."""
    from .plan_schedule import schedule_files
    return list(dict.fromkeys([config.plan_path, *schedule_files(config)]))


# -- output -----------------------------------------------------------------------------------------
def _local(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(wall)) + f".{int(wall * 1000) % 1000:03d}"


def _chutes_text(d: dict | None) -> str:
    return "-" if d is None else "/".join(map(str, d["chutes"]))


def _text(d: dict | None, key: str) -> str:
    return "-" if d is None or d.get(key) is None else str(d[key])


CSV_COLUMNS = ("id", "scanned_local", "plc_boot", "tracking", "waybills", "routing_code", "recorded_plan",
               "recorded_chute", "recorded_reason", "recorded_destination", "before_chutes", "before_reason",
               "before_destination", "after_chutes", "after_reason", "after_destination", "changed")


def _rows(result: Replay) -> list[dict]:
    """One flat row per parcel listed: a difference from its plan, or a change by the other plan."""
    listed = result.would_change if result.other_plan is not None else result.differences
    rows = []
    for item in listed:
        rec = item["recorded"]
        before = item.get("used_plan", item.get("replayed"))
        after = item.get("other_plan")
        rows.append({"id": item["id"], "scanned_local": item["scanned_local"], "plc_boot": item["plc_boot"],
                     "tracking": item["tracking"], "waybills": " ".join(item["waybills"]),
                     "routing_code": item["routing_code"] or "", "recorded_plan": rec["plan_version"],
                     "recorded_chute": rec["chute"], "recorded_reason": rec["reason"],
                     "recorded_destination": rec["destination"] or "", "before_chutes": _chutes_text(before),
                     "before_reason": _text(before, "reason"), "before_destination": _text(before, "destination"),
                     "after_chutes": _chutes_text(after), "after_reason": _text(after, "reason"),
                     "after_destination": _text(after, "destination"),
                     "changed": ",".join(item.get("changed", ["differs from its record"]))})
    return rows


def write_table(result: Replay, out, limit: int) -> None:
    w = out.write
    w(f"{result.parcels} parcels decided by the controller ({result.not_decided} rows of a PLC confirmation alone "
      f"not counted), replayed in {result.elapsed_s:.2f} s\n")
    for version, n in result.by_plan.items():
        w(f"  plan {version}: {n} parcels\n")
    for version, n in result.missing_plans.items():
        w(f"  plan {version}: {n} parcels NOT checked: no plan file of that version was given "
          f"(give it with --used-plan FILE)\n")
    c = result.check
    w(f"check of the records: {c[SAME]} same chute, {c[SPREAD]} another chute of the same destination (spread "
      f"turn or a full chute), {c[CHUTE_STATE]} overflow or reject because chutes were unavailable, "
      f"{c[DIFFERS]} differ from their plan\n")
    if result.other_plan is not None:
        by = ", ".join(f"{n} {what}" for what, n in result.changes_by.items()) or "none"
        w(f"plan {result.other_plan} would change {len(result.would_change)} parcels (by {by})\n")
    rows = _rows(result)
    if not rows:
        return
    heads: tuple[tuple[str, str], ...] = (("id", "id"), ("scanned_local", "scanned"), ("tracking", "tracking"), ("waybills", "waybills"),
             ("routing_code", "routing code"), ("recorded_chute", "rec chute"),
             ("before_destination", "destination"), ("before_chutes", "chutes"), ("before_reason", "reason"),
             ("after_destination", "-> destination"), ("after_chutes", "-> chutes"), ("after_reason", "-> reason"))
    if result.other_plan is None:
        heads = heads[:6] + (("recorded_destination", "rec destination"), ("recorded_reason", "rec reason"),
                             ("before_destination", "plan destination"), ("before_chutes", "plan chutes"),
                             ("before_reason", "plan reason"))
    shown = rows[:limit] if limit else rows
    cells = [[str(r[k]) for k, _ in heads] for r in shown]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, (_, h) in enumerate(heads)]
    w("  ".join(h.ljust(widths[i]) for i, (_, h) in enumerate(heads)).rstrip() + "\n")
    for line in cells:
        w("  ".join(v.ljust(widths[i]) for i, v in enumerate(line)).rstrip() + "\n")
    if len(rows) > len(shown):
        w(f"... and {len(rows) - len(shown)} more (--limit 0 lists all, --csv or --json for a file)\n")


def write_csv(result: Replay, out) -> None:
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_rows(result))


def main(argv=None) -> int:
    from .report import ReportError, parse_when
    parser = argparse.ArgumentParser(
        prog="sortline replay", description=__doc__.split("\n\n")[0] + ". Exit status 0: every parcel agrees "
        "with its plan; 1: some differ or their plan was not given; 2: bad input.")
    parser.add_argument("--from", dest="start", required=True, help="start, e.g. 2026-11-28T06:00 (local time)")
    parser.add_argument("--to", dest="end", required=True, help="end (not included), e.g. 2026-11-28T14:00")
    parser.add_argument("--config", default="configs/county-24.toml", help="the line config: its chutes, records "
                        "folder, plan file and scheduled plans")
    parser.add_argument("--records", help="records folder (default: the [records] folder of --config)")
    parser.add_argument("--used-plan", action="append", default=[], metavar="FILE",
                        help="a plan file the records were decided with, beside the line's own (repeat it for "
                             "several versions)")
    parser.add_argument("--plan", metavar="FILE", help="another plan: list the parcels it would decide otherwise")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="everything as one JSON object")
    form.add_argument("--csv", action="store_true", help="the parcels listed, as CSV")
    parser.add_argument("--limit", type=int, default=50, help="parcels listed in the table (0: all)")
    args = parser.parse_args(argv)
    from .config import ConfigError, load_config
    from .config_problems import print_errors
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print_errors(args.config, exc.problems)
        return 2
    try:
        start_wall, end_wall = parse_when(args.start, "--from"), parse_when(args.end, "--to")
        records = Path(args.records) if args.records else config.records_folder
        parcels = load_parcels(records / "parcels.sqlite", start_wall, end_wall)
        n_chutes = len(config.geometry.chutes)
        used = load_deciders([*line_plan_files(config), *map(Path, args.used_plan)], n_chutes)
        other = None
        if args.plan:
            other = next(iter(load_deciders([Path(args.plan)], n_chutes).values()))
    except (ReplayError, ReportError) as exc:
        print(f"sortline replay: {exc}", file=sys.stderr)
        return 2
    result = replay(parcels, used, other)
    if args.json:
        json.dump(result.as_dict(), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    elif args.csv:
        write_csv(result, sys.stdout)
    else:
        write_table(result, sys.stdout, args.limit)
    return 1 if result.check[DIFFERS] or result.missing_plans else 0
