"""When parcels reach the scan photo-eye: fixed pitch, Poisson, or a replayed trace.

Arrivals are placed in belt travel (`at_m`, metres after the first parcel), not in time: an
induction feeds a moving belt, so when the line stops, parcels stop arriving too, and a rate in
parcels per hour means per hour of running belt. Every parcel keeps a gap behind the one before
it (a gapper at the induction does this on a real line).

A trace is a CSV file with a header, one parcel per row, `#` starting a comment line:
    t_s           seconds of the scan, any origin, never decreasing (or `timestamp`, ISO 8601)
    length_mm     optional: along the belt; the gap check uses it (default --parcel-length-m)
    width_mm, height_mm, weight_kg   optional: carried into the shift report

A trace denser than the belt allows (a parcel reaching the photo-eye before the one before has
cleared it) is refused by default: it was recorded at another belt speed, or its times are not
scan times. A trace from another site's line may be denser than this belt can carry, though;
with `queue_gap_m` the induction holds each parcel back until the one before is a gap ahead, as
a gapper would, and each arrival says how long it waited (`delay_s`).
"""
import csv
import dataclasses
import datetime
import difflib
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_LENGTH_M = 0.4
DEFAULT_GAP_M = 0.1
TRACE_COLUMNS = {             # name -> (low, high) allowed, None for the time columns
    "t_s": None, "timestamp": None,
    "length_mm": (50.0, 2000.0), "width_mm": (20.0, 1500.0), "height_mm": (5.0, 1500.0),
    "weight_kg": (0.001, 70.0),
}


class ArrivalError(ValueError):
    pass


@dataclass(frozen=True)
class Arrival:
    at_m: float                       # belt travel after the first parcel's scan
    length_m: float = DEFAULT_LENGTH_M
    width_mm: float | None = None
    height_mm: float | None = None
    weight_kg: float | None = None
    delay_s: float = 0.0              # held at the induction behind denser parcels (queued trace)


def _check_pitch(rate_per_h: float, speed_m_s: float, length_m: float, gap_m: float) -> float:
    if rate_per_h <= 0:
        raise ArrivalError(f"rate must be more than 0 parcels per hour, got {rate_per_h:g}")
    pitch_m = speed_m_s * 3600.0 / rate_per_h
    if pitch_m < length_m + gap_m:
        most = speed_m_s * 3600.0 / (length_m + gap_m)
        raise ArrivalError(f"{rate_per_h:.0f} parcels/h at {speed_m_s:g} m/s puts parcel heads {pitch_m:.2f} m apart, "
                           f"less than a {length_m:.2f} m parcel plus a {gap_m:.2f} m gap: use at most "
                           f"{most:.0f} parcels/h, or shorter parcels (--parcel-length-m) or gap (--min-gap-m)")
    return pitch_m


def fixed_pitch(rate_per_h: float, speed_m_s: float, length_m: float = DEFAULT_LENGTH_M,
                gap_m: float = DEFAULT_GAP_M):
    """One parcel every `speed * 3600 / rate` metres, forever."""
    pitch_m = _check_pitch(rate_per_h, speed_m_s, length_m, gap_m)
    for i in itertools.count():
        yield Arrival(i * pitch_m, length_m)


def poisson(rate_per_h: float, speed_m_s: float, seed: int, length_m: float = DEFAULT_LENGTH_M,
            gap_m: float = DEFAULT_GAP_M):
    """Random arrivals at `rate_per_h` on average, never closer than a parcel plus a gap, forever.

    The head-to-head distance is the minimum pitch plus an exponential remainder, so the mean rate
    is the one asked for and the gapper's minimum holds.
    """
    mean_m = _check_pitch(rate_per_h, speed_m_s, length_m, gap_m)
    min_m = length_m + gap_m
    rng = np.random.default_rng(seed)
    at_m = 0.0
    while True:
        yield Arrival(at_m, length_m)
        at_m += min_m + float(rng.exponential(mean_m - min_m)) if mean_m > min_m else min_m


def _number(text: str, column: str, where: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ArrivalError(f"{where}: {column} = {text!r} is not a number") from None
    bounds = TRACE_COLUMNS[column]
    if bounds and not bounds[0] <= value <= bounds[1]:
        raise ArrivalError(f"{where}: {column} = {text} is outside {bounds[0]:g}-{bounds[1]:g}: "
                           f"check the unit (the column name says it)")
    return value


def _seconds(row: dict, column: str, where: str) -> float:
    text = (row.get(column) or "").strip()
    if not text:
        raise ArrivalError(f"{where}: {column} is empty: every parcel needs its scan time")
    if column == "t_s":
        value = _number(text, "t_s", where)
        if not np.isfinite(value):
            raise ArrivalError(f"{where}: t_s = {text} is not a finite number of seconds")
        return value
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ArrivalError(f"{where}: timestamp = {text!r} is not an ISO 8601 date and time "
                           f"(like 2026-11-28T08:00:01.250)") from None


def read_trace(path, speed_m_s: float, default_length_m: float = DEFAULT_LENGTH_M,
               queue_gap_m: float | None = None) -> list[Arrival]:
    """Parcels of a recorded trace, checked: times never go back, parcels never overlap at the photo-eye.

    With `queue_gap_m`, parcels closer than the one before plus that gap wait at the induction
    instead (their `delay_s`), and so do the ones behind them while the queue lasts.
    """
    path = Path(path)
    if queue_gap_m is not None and queue_gap_m < 0:
        raise ArrivalError(f"the induction's minimum gap must be 0 m or more, got {queue_gap_m:g} m")
    rows, time_column = _trace_rows(path)
    arrivals, first_s, prev, prev_t_s = [], None, None, None
    for where, row in rows:
        t_s = _seconds(row, time_column, where)
        sizes = {c: _number(row[c], c, where) for c in row if c != time_column and row.get(c) is not None}
        first_s = t_s if first_s is None else first_s
        length_m = (sizes.get("length_mm") or default_length_m * 1000) / 1000
        a = Arrival((t_s - first_s) * speed_m_s, length_m, sizes.get("width_mm"), sizes.get("height_mm"),
                    sizes.get("weight_kg"))
        if prev is not None:
            if t_s < prev_t_s:
                raise ArrivalError(f"{where}: {time_column} goes back in time from the row before: sort the trace by scan time")
            if queue_gap_m is None:
                _check_clear(prev, a, speed_m_s, where)
            else:
                a = _queued(prev, a, speed_m_s, queue_gap_m)
        arrivals.append(a)
        prev, prev_t_s = a, t_s
    if not arrivals:
        raise ArrivalError(f"{path}: the trace has a header but no parcels")
    return arrivals


def _trace_rows(path: Path) -> tuple[list[tuple[str, dict]], str]:
    """([(file:line, row)], the time column) of a trace, its header checked."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ArrivalError(f"{path}: cannot read the arrival trace: {exc.strerror}") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ArrivalError(f"{path}: the trace is empty: write a header (t_s,length_mm,...) and one row per parcel")
    header_no = lines[0][0]
    reader = csv.DictReader(line for _, line in lines)
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    for column in columns:
        if column not in TRACE_COLUMNS:
            close = difflib.get_close_matches(column, TRACE_COLUMNS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ArrivalError(f"{path}:{header_no}: unknown column {column!r}{hint}; allowed: "
                               f"{', '.join(TRACE_COLUMNS)}; remove or rename it")
    time_columns = [c for c in ("t_s", "timestamp") if c in columns]
    if len(time_columns) != 1:
        raise ArrivalError(f"{path}:{header_no}: the header needs exactly one time column, t_s (seconds) or "
                           f"timestamp (ISO 8601); it has {time_columns or 'none'}")
    rows = []
    for (line_no, _), row in zip(lines[1:], reader):
        where = f"{path}:{line_no}"
        if None in row:
            raise ArrivalError(f"{where}: more values than the header has columns")
        rows.append((where, row))
    return rows, time_columns[0]


def _check_clear(prev: Arrival, a: Arrival, speed_m_s: float, where: str) -> None:
    if a.at_m - prev.at_m < prev.length_m:
        gap_s = (a.at_m - prev.at_m) / speed_m_s
        raise ArrivalError(
            f"{where}: this parcel reaches the photo-eye {gap_s * 1000:.0f} ms after the one before, "
            f"which is {prev.length_m * 1000:.0f} mm long and needs {prev.length_m / speed_m_s * 1000:.0f} ms "
            f"to clear it at {speed_m_s:g} m/s: the trace was recorded at another belt speed, or its "
            f"times are not scan times; to replay a denser line's trace on this belt, queue the parcels "
            f"at the induction (sortline sim --queue-at-induction)")


def _queued(prev: Arrival, a: Arrival, speed_m_s: float, gap_m: float) -> Arrival:
    """`a`, held at the induction until `prev` is a parcel length and `gap_m` ahead of it."""
    earliest_m = prev.at_m + prev.length_m + gap_m
    if a.at_m >= earliest_m:
        return a
    waited_s = (earliest_m - a.at_m) / speed_m_s
    return dataclasses.replace(a, at_m=earliest_m, delay_s=a.delay_s + waited_s)


def queue_summary(arrivals) -> dict:
    """How many parcels waited at the induction, and how long (max and p95 among those that waited)."""
    waits = sorted(a.delay_s for a in arrivals if a.delay_s > 0)
    return {"parcels": len(arrivals), "delayed": len(waits),
            "delay_max_s": round(waits[-1], 3) if waits else 0.0,
            "delay_p95_s": round(float(np.percentile(waits, 95)), 3) if waits else 0.0}
