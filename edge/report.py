"""`sortline report`: a shift report from the parcel records, as CSV files and one HTML page.

    sortline report --from 2026-11-28T06:00 --to 2026-11-28T14:00 --out reports/day-shift

Times are the line PC's local time unless they carry an offset (`...T06:00+08:00`). The page has
its charts inline (SVG) and loads nothing from the network, so it opens on the offline line PC.
"""
import argparse
import csv
import json
import sqlite3
import statistics
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .web.i18n import SORTED_REASONS, UNREAD_REASONS

BUCKET_MIN = 15
PERCENTILES = (50, 90, 95, 99)
PARCEL_COLUMNS = ("scanned_local", "plc_boot", "tracking", "waybills", "routing_code", "courier", "destination",
                  "read_sources", "no_read_reason", "chute", "reason", "plan_version", "sent", "confirmed_chute",
                  "confirmed_result", "outcome", "image_ms", "read_ms", "decide_ms", "total_ms", "weight_kg",
                  "length_mm", "width_mm", "height_mm", "volume_l")
COURIER_COLUMNS = ("courier", "parcels", "weighed", "weight_kg", "mean_kg", "volume_l", "overweight", "oversize")
NO_COURIER = "(none)"        # parcels whose waybill told no courier (no reads among them)


class ReportError(Exception):
    pass


def parse_when(text: str, flag: str) -> float:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReportError(f"{flag} {text!r} is not a date and time: write it like 2026-11-28T06:00 "
                          f"(local time) or 2026-11-28T06:00+08:00") from None
    return when.timestamp()     # a naive time is taken as the line PC's local time


def outcome(reason: str, confirmed_result: str | None) -> str:
    """One word per parcel: SORTED, or its first failure (the decision's, else the PLC's)."""
    if reason not in SORTED_REASONS:
        return reason
    if confirmed_result is None:
        return "UNCONFIRMED"
    return "SORTED" if confirmed_result == "DIVERTED" else confirmed_result


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Bucket:
    start: datetime
    parcels: int = 0
    read: int = 0
    sorted: int = 0
    total_ms: list = field(default_factory=list)


@dataclass
class CourierWeight:
    """What a courier's parcels weighed in the shift: couriers pay the center by weight."""
    parcels: int = 0
    weighed: int = 0              # parcels with a weight in their record (the scale's came in time)
    weight_kg: float = 0.0
    volume_l: float = 0.0         # of the parcels measured as well
    overweight: int = 0
    oversize: int = 0

    @property
    def mean_kg(self) -> float | None:
        return self.weight_kg / self.weighed if self.weighed else None


@dataclass
class Shift:
    start_wall: float
    end_wall: float
    parcels: list[dict]
    actions: list[dict]
    buckets: list[Bucket]
    outcomes: dict[str, int]
    per_chute: dict[int, int]
    latency_ms: dict[str, float | None]
    stage_median_ms: dict[str, float | None]
    plan_versions: list[str]
    per_courier: dict[str, CourierWeight] = field(default_factory=dict)

    @property
    def read(self) -> int:
        return sum(b.read for b in self.buckets)

    @property
    def sorted(self) -> int:
        return self.outcomes.get("SORTED", 0)

    @property
    def rejects(self) -> dict[str, int]:
        return {k: v for k, v in self.outcomes.items() if k not in ("SORTED", "UNCONFIRMED")}


def load_shift(records_db: Path, start_wall: float, end_wall: float) -> Shift:
    if not records_db.exists():
        raise ReportError(f"{records_db}: no parcel records there; give the records folder of the line with "
                          f"--records (the [records] folder of its config)")
    db = sqlite3.connect(f"file:{records_db}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        parcels = [dict(r) for r in db.execute(
            "SELECT * FROM parcels WHERE scanned_wall >= ? AND scanned_wall < ? ORDER BY scanned_wall, id",
            (start_wall, end_wall))]
        actions = [dict(r) for r in db.execute(
            "SELECT at_wall, who, action, detail FROM actions WHERE at_wall >= ? AND at_wall < ? ORDER BY id",
            (start_wall, end_wall))]
    except sqlite3.DatabaseError as exc:
        raise ReportError(f"{records_db}: not readable as parcel records ({exc})") from None
    finally:
        db.close()
    return summarize(parcels, actions, start_wall, end_wall)


def _bucket_start(wall: float) -> datetime:
    t = datetime.fromtimestamp(wall)
    return t.replace(minute=t.minute // BUCKET_MIN * BUCKET_MIN, second=0, microsecond=0)


def summarize(parcels: list[dict], actions: list[dict], start_wall: float, end_wall: float) -> Shift:
    buckets: dict[datetime, Bucket] = {}
    start = _bucket_start(start_wall)
    while start.timestamp() < end_wall and len(buckets) < 4 * 24 * 7:      # a week at most as empty quarters
        buckets[start] = Bucket(start)
        start = _bucket_start(start.timestamp() + BUCKET_MIN * 60 + 1)
    outcomes: dict[str, int] = {}
    per_chute: dict[int, int] = {}
    latencies, stages = [], {"image_ms": [], "read_ms": [], "decide_ms": []}
    for p in parcels:
        p["outcome"] = outcome(p["reason"], p["confirmed_result"])
        b = buckets.setdefault(_bucket_start(p["scanned_wall"]), Bucket(_bucket_start(p["scanned_wall"])))
        b.parcels += 1
        b.read += p["reason"] not in UNREAD_REASONS
        b.sorted += p["outcome"] == "SORTED"
        outcomes[p["outcome"]] = outcomes.get(p["outcome"], 0) + 1
        if p["confirmed_chute"] is not None:
            per_chute[p["confirmed_chute"]] = per_chute.get(p["confirmed_chute"], 0) + 1
        if p["total_ms"] is not None:
            latencies.append(p["total_ms"])
            b.total_ms.append(p["total_ms"])
        for k in stages:
            if p.get(k) is not None:
                stages[k].append(p[k])
    per_courier = weights_per_courier(parcels)
    latency = {f"p{q}": percentile(latencies, q) for q in PERCENTILES}
    latency["max"] = max(latencies) if latencies else None
    return Shift(start_wall, end_wall, parcels, actions, [buckets[k] for k in sorted(buckets)],
                 dict(sorted(outcomes.items(), key=lambda kv: -kv[1])), dict(sorted(per_chute.items())), latency,
                 {k: statistics.median(v) if v else None for k, v in stages.items()},
                 sorted({p["plan_version"] for p in parcels} - {""}), per_courier)


def weights_per_courier(parcels: list[dict]) -> dict[str, CourierWeight]:
    """Per courier, most parcels first; records of format 2 and before have no weights (all None)."""
    out: dict[str, CourierWeight] = {}
    for p in parcels:
        c = out.setdefault(p.get("courier") or NO_COURIER, CourierWeight())
        c.parcels += 1
        c.overweight += p["reason"] == "OVERWEIGHT"
        c.oversize += p["reason"] == "OVERSIZE"
        if p.get("weight_kg") is not None:
            c.weighed += 1
            c.weight_kg += p["weight_kg"]
        if p.get("volume_l") is not None:
            c.volume_l += p["volume_l"]
    return dict(sorted(out.items(), key=lambda kv: (-kv[1].parcels, kv[0])))


def _local(wall: float) -> str:
    return datetime.fromtimestamp(wall).isoformat(timespec="seconds")


def write_csv(shift: Shift, out: Path) -> list[Path]:
    parcels_csv, summary_csv = out / "parcels.csv", out / "summary.csv"
    # utf-8-sig: spreadsheet programs on the office PC then open Chinese text correctly
    with open(parcels_csv, "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(PARCEL_COLUMNS)
        for p in shift.parcels:
            sources = p["read_sources"]
            w.writerow([_local(p["scanned_wall"]), p["plc_boot"], p["tracking"], " ".join(json.loads(p["waybills"])),
                        p["routing_code"] or "", p["courier"] or "", p["destination"] or "",
                        " ".join(f"{k}:{v}" for k, v in json.loads(sources).items()) if sources else "",
                        p["no_read_reason"] or "", p["chute"], p["reason"], p["plan_version"], p["sent"],
                        "" if p["confirmed_chute"] is None else p["confirmed_chute"], p["confirmed_result"] or "",
                        p["outcome"], *(("" if p[k] is None else round(p[k], 2))
                                        for k in ("image_ms", "read_ms", "decide_ms", "total_ms")),
                        *("" if p.get(k) is None else round(p[k], 3)
                          for k in ("weight_kg", "length_mm", "width_mm", "height_mm", "volume_l"))])
    with open(summary_csv, "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(["start_local", "minutes", "parcels", "read", "read_rate", "sorted", "sort_rate",
                    "p50_ms", "p99_ms"])
        for b in shift.buckets:
            p50, p99 = percentile(b.total_ms, 50), percentile(b.total_ms, 99)
            w.writerow([b.start.isoformat(timespec="minutes"), BUCKET_MIN, b.parcels, b.read,
                        round(b.read / b.parcels, 4) if b.parcels else "", b.sorted,
                        round(b.sorted / b.parcels, 4) if b.parcels else "",
                        "" if p50 is None else round(p50, 1), "" if p99 is None else round(p99, 1)])
    couriers_csv = out / "couriers.csv"
    with open(couriers_csv, "w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(COURIER_COLUMNS)
        for name, c in shift.per_courier.items():
            w.writerow([name, c.parcels, c.weighed, round(c.weight_kg, 3),
                        "" if c.mean_kg is None else round(c.mean_kg, 3), round(c.volume_l, 3), c.overweight,
                        c.oversize])
    return [parcels_csv, summary_csv, couriers_csv]


def make_report(records_db: Path, start_wall: float, end_wall: float, out: Path, line_name: str = "",
                budget_ms: float | None = None) -> tuple[Shift, list[Path]]:
    from .web.report_page import render_report
    if end_wall <= start_wall:
        raise ReportError("--to must be later than --from")
    shift = load_shift(records_db, start_wall, end_wall)
    out.mkdir(parents=True, exist_ok=True)
    files = write_csv(shift, out)
    page = out / "report.html"
    page.write_text(render_report(shift, line_name=line_name, budget_ms=budget_ms, no_courier=NO_COURIER), encoding="utf-8")
    return shift, [*files, page]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="start", required=True, help="start, e.g. 2026-11-28T06:00 (local time)")
    parser.add_argument("--to", dest="end", required=True, help="end (not included), e.g. 2026-11-28T14:00")
    parser.add_argument("--records", help="records folder (default: the [records] folder of --config)")
    parser.add_argument("--config", default="configs/county-24.toml", help="line config, for its name and records")
    parser.add_argument("--out", required=True, help="folder for report.html, parcels.csv, summary.csv and "
                        "couriers.csv (weight per courier)")
    args = parser.parse_args(argv)
    line_name, budget_ms, records = "", None, args.records
    config = _config_for_report(args.config, required=records is None)
    if config is not None:
        line_name = config["line"]["name"]
        budget_ms = config.geometry.decision_after_scan_s * 1000
        records = records or config.resolve(config["records"]["folder"])
    try:
        shift, files = make_report(Path(records) / "parcels.sqlite", parse_when(args.start, "--from"),
                                   parse_when(args.end, "--to"), Path(args.out), line_name, budget_ms)
    except ReportError as exc:
        print(f"sortline report: {exc}", file=sys.stderr)
        return 2
    print(f"{len(shift.parcels)} parcels from {_local(shift.start_wall)} to {_local(shift.end_wall)}; "
          f"sorted {shift.sorted}, read {shift.read}")
    for name, c in shift.per_courier.items():
        if c.weighed:
            print(f"  {name}: {c.parcels} parcels, {c.weighed} weighed, {c.weight_kg:.1f} kg")
    for f in files:
        print(f"  {f}")
    return 0


def _config_for_report(path: str, required: bool):
    """The line config names the line and its records; with --records given, a missing one is no obstacle."""
    from .config import ConfigError, load_config
    if not required and not Path(path).exists():
        return None
    try:
        return load_config(path)
    except ConfigError as exc:
        if required:
            raise SystemExit(f"sortline report: {exc}\ngive the records folder with --records instead") from None
        return None
