"""Checks that need several keys at once: chutes, the time budget, the PLC blocks, the screen, the plan.

They run after every key has been checked on its own, and only on the keys that passed, so that
one typo gives one message, not a cascade. CHECKS lists them for docs/configuration.md.
"""
import ipaddress

from edge.line_geometry import Chute, LineGeometry

from .code_reader_config import READER_CHECKS, reader_problems
from .config_problems import MISSING, Draft, Problem, toml_text
from .plan_schedule import CHECK_TEXT as SCHEDULE_CHECK, check_schedule
from .scale_config import SCALE_CHECKS, scale_problems

CHECKS = [
    "Chutes are numbered 1, 2, 3, ... without gaps or repeats (the PLC and the sort plan count them that way).",
    'Exactly one chute has side = "end", it is [line] end_chute, and it is the furthest along the belt.',
    "Every chute sits downstream of the scan point ([line] scan_point_m).",
    "Two chutes on the same side are at least [line] chute_width_m apart (they would overlap).",
    "The decision budget covers the stages: (first diverter position - scan point) / belt speed - switch_time_ms "
    "- plc_margin_ms must be at least image_wait_ms + budget_ms + decide_ms + assign_ms.",
    "[plc] heartbeat_timeout_ms is at least two heartbeat intervals; the Modbus register blocks of the PLC and "
    "the controller do not overlap.",
    "[screen] bind is an IP address, and the screen does not take the PLC's port on the same host.",
    "[metrics] listen is an IP address and a port, and /metrics does not take the screen's or the PLC's port on "
    "the same host.",
    "The sort plan is valid (docs/sort-plan.md) for a line with this many chutes, so every chute it names exists.",
    "The plan's [special] reject chute is the line's end chute (the plan keeps destinations and courier "
    "overrides off its special chutes, so none of them can use the end chute).",
    SCHEDULE_CHECK,
    *READER_CHECKS,
    *SCALE_CHECKS,
]


def check_all(d: Draft) -> LineGeometry | None:
    geometry = _geometry(d)
    if geometry is not None:
        _budget(d, geometry)
        if d.ok(("plan", "file")):
            for problem in plan_problems(d.resolve(d.values["plan"]["file"]), geometry, d.file):
                d.problems.append(problem)
        check_schedule(d, geometry, plan_problems)
    _plc(d)
    _screen(d)
    reader_problems(d)
    scale_problems(d)
    _metrics(d)
    return geometry


# -- chutes ---------------------------------------------------------------------------------------
def _geometry(d: Draft) -> LineGeometry | None:
    needed = [("line", k) for k in ("belt_speed_m_s", "scan_point_m", "switch_time_ms", "plc_margin_ms",
                                    "encoder_mm_per_count", "chute_width_m", "end_chute", "chutes")]
    if not d.ok(*needed):
        return None
    line = d.values["line"]
    entries = line["chutes"]
    if not entries:
        d.add(d.at("line", "chutes"), "[line] chutes", [], "the line has no chutes",
              'Add one entry per chute: { number = 1, position_m = 1.5, side = "left" }')
        return None
    if not _numbering(d, entries):
        return None
    index_of = {e["number"]: i for i, e in enumerate(entries)}

    def where(number, key):
        i = index_of[number]
        return d.at.entry("line", "chutes", i, key), f"[line] chutes #{i + 1} {key}", d.given("line", "chutes", i, key)

    before = len(d.problems)
    end = line["end_chute"]
    ends = [e["number"] for e in entries if e["side"] == "end"]
    if end not in index_of:
        d.add(d.at("line", "end_chute"), "[line] end_chute", d.given("line", "end_chute"),
              "no such chute in [line] chutes",
              f"Use the number of the chute at the end of the belt (1 to {len(entries)})")
    elif not ends:
        d.add(d.at("line", "chutes"), "[line] chutes", MISSING, 'no chute has side = "end"',
              f'Mark the chute at the end of the belt (end_chute = {end}) with side = "end"')
    elif end not in ends:
        d.add(d.at("line", "end_chute"), "[line] end_chute", d.given("line", "end_chute"),
              f"chute {end} is on the {entries[index_of[end]]['side']} side, not at the end of the belt",
              'Set end_chute to the chute with side = "end"' + (f" ({ends[0]})" if len(ends) == 1 else ""))
    else:
        for number in ends:
            if number != end:
                d.add(*where(number, "side"), f"chute {number} is also at the end of the belt, but the end chute "
                      f"is {end}", 'Only the end chute has side = "end"; give this one "left" or "right"')
    scan_m = line["scan_point_m"]
    for e in entries:
        if e["position_m"] <= scan_m:
            d.add(*where(e["number"], "position_m"),
                  f"chute {e['number']} is not after the scan point (scan_point_m = "
                  f"{toml_text(d.raw['line'].get('scan_point_m', scan_m))})",
                  "Chutes sit downstream of the scan photo-eye: measure positions from the same origin as "
                  "scan_point_m")
    if not [e for e in entries if e["side"] != "end"]:
        d.add(d.at("line", "chutes"), "[line] chutes", MISSING, "no chute on either side of the belt",
              'Add the side chutes with side = "left" or "right"')
    if len(d.problems) > before:
        return None
    # What follows is wrong but leaves the timing clear: the budget and the plan are still checked.
    end_m = entries[index_of[end]]["position_m"]
    beyond = [e for e in entries if e["number"] != end and e["position_m"] >= end_m]
    if beyond:
        far = max(beyond, key=lambda e: e["position_m"])
        d.add(*where(end, "position_m"), f"the end chute must be the furthest along the belt, but chute "
              f"{far['number']} is at {toml_text(d.given('line', 'chutes', index_of[far['number']], 'position_m'))} m",
              "Give the end chute a position past every other chute")
    _overlaps(d, entries, where)
    chutes = tuple(Chute(e["number"], round(e["position_m"] - scan_m, 6), e["side"])
                   for e in sorted(entries, key=lambda e: e["number"]))
    return LineGeometry(line["belt_speed_m_s"], line["switch_time_ms"] / 1000, line["plc_margin_ms"] / 1000,
                        chutes, end, line["encoder_mm_per_count"])


def _numbering(d: Draft, entries: list) -> bool:
    """Chutes 1..N, each once: the PLC and the plan count them that way."""
    first, repeated = {}, False
    for index, entry in enumerate(entries):
        number = entry["number"]
        if number in first:
            repeated = True
            d.add(d.at.entry("line", "chutes", index, "number"), f"[line] chutes #{index + 1} number", number,
                  f"chute {number} is listed twice (first in entry #{first[number] + 1})", "Give each chute one entry")
        else:
            first[number] = index
    if repeated:
        return False
    missing = sorted(set(range(1, len(entries) + 1)) - set(first))
    if missing:
        d.add(d.at("line", "chutes"), "[line] chutes", MISSING,
              f"chute numbers must run from 1 to {len(entries)} without gaps; missing: " + ", ".join(map(str, missing)),
              "Number the chutes 1, 2, 3, ... (in any order)")
        return False
    return True


def _overlaps(d: Draft, entries: list, where) -> None:
    width = d.values["line"]["chute_width_m"]
    for side in ("left", "right"):
        row = sorted((e for e in entries if e["side"] == side), key=lambda e: (e["position_m"], e["number"]))
        for a, b in zip(row, row[1:]):
            gap = b["position_m"] - a["position_m"]
            if gap < width:
                d.add(*where(b["number"], "position_m"),
                      f"chute {b['number']} overlaps chute {a['number']} on the {side} side: {gap:.2f} m apart, "
                      f"less than chute_width_m = {toml_text(d.raw['line'].get('chute_width_m', width))}",
                      "Correct the positions, or chute_width_m if the openings are narrower")


# -- time ------------------------------------------------------------------------------------------
STAGES = (("camera", "image_wait_ms"), ("vision", "budget_ms"), ("budgets", "decide_ms"), ("budgets", "assign_ms"))


def _budget(d: Draft, g: LineGeometry) -> None:
    if not d.ok(*STAGES):
        return
    line = d.values["line"]
    stages = [(f"[{s}] {k}", d.values[s][k]) for s, k in STAGES]
    needed_ms = sum(v for _, v in stages)
    travel_ms = g.first_divert_m / g.belt_speed_m_s * 1000
    budget_ms = g.decision_after_scan_s * 1000
    if budget_ms >= needed_ms:
        return
    d.add(None, "decision budget", MISSING,
          f"{budget_ms:.0f} ms, but the stages need {needed_ms:.0f} ms. The first diverter is {g.first_divert_m:g} m "
          f"after the scan point: {travel_ms:.0f} ms at {g.belt_speed_m_s:g} m/s, minus [line] switch_time_ms "
          f"{line['switch_time_ms']:g} and plc_margin_ms {line['plc_margin_ms']:g}; the stages are "
          + " + ".join(f"{name} {v:g}" for name, v in stages),
          f"Lower the stage budgets by {needed_ms - budget_ms:.0f} ms, or move the scan point further upstream, "
          "or slow the belt")


# -- PLC and screen --------------------------------------------------------------------------------
def _plc(d: Draft) -> None:
    plc = d.values["plc"]
    if d.ok(("plc", "heartbeat_interval_ms"), ("plc", "heartbeat_timeout_ms")) \
            and "heartbeat_timeout_ms" in plc and "heartbeat_interval_ms" in plc \
            and plc["heartbeat_timeout_ms"] < 2 * plc["heartbeat_interval_ms"]:
        d.add(d.at("plc", "heartbeat_timeout_ms"), "[plc] heartbeat_timeout_ms", d.raw["plc"]["heartbeat_timeout_ms"],
              f"shorter than two heartbeats (heartbeat_interval_ms = {plc['heartbeat_interval_ms']:g})",
              f"Set it to at least {2 * plc['heartbeat_interval_ms']:g}: one late heartbeat must not make the PLC "
              "reject every parcel")
    if plc.get("protocol") == "modbus" and d.ok(("plc", "plc_base"), ("plc", "edge_base")):
        from drivers import regmap
        plc_end = plc["plc_base"] + regmap.PLC_BLOCK_WORDS - 1
        edge_end = plc["edge_base"] + regmap.EDGE_BLOCK_WORDS - 1
        if regmap.RegisterMap(plc["plc_base"], plc["edge_base"]).overlaps():
            d.add(d.at("plc", "edge_base"), "[plc] edge_base", plc["edge_base"],
                  f"the controller's registers {plc['edge_base']}..{edge_end} overlap the PLC's registers "
                  f"{plc['plc_base']}..{plc_end}",
                  f"Move edge_base to {plc_end + 1} or above, or plc_base to {edge_end + 1} or above, as the "
                  "PLC program has them")


def _screen(d: Draft) -> None:
    screen, plc = d.values["screen"], d.values["plc"]
    if d.ok(("screen", "bind")):
        try:
            ipaddress.ip_address(screen["bind"])
        except ValueError:
            d.add(d.at("screen", "bind"), "[screen] bind", screen["bind"], "not an IP address",
                  'Write "127.0.0.1" (this PC only) or this PC\'s address on the line network')
    if screen.get("enabled") and d.ok(("screen", "port"), ("plc", "port"), ("plc", "host")) \
            and screen["port"] == plc.get("port") and plc.get("host") in ("127.0.0.1", "localhost", "::1"):
        d.add(d.at("screen", "port"), "[screen] port", screen["port"],
              f"the same port as the PLC on this PC ([plc] port = {plc['port']})",
              "Choose another port for the screen, e.g. 8480")


def _metrics(d: Draft) -> None:
    from .metrics_http import ListenError, parse_listen
    metrics, screen, plc = d.values["metrics"], d.values["screen"], d.values["plc"]
    if not (metrics.get("enabled") and d.ok(("metrics", "listen"))):
        return
    where, raw = d.at("metrics", "listen"), metrics["listen"]
    try:
        host, port = parse_listen(metrics["listen"])
    except ListenError as exc:
        d.add(where, "[metrics] listen", raw, str(exc), 'Write an address and a port: "127.0.0.1:9108" (this PC '
              'only) or this PC\'s address on the site network, "192.168.1.20:9108"')
        return
    if screen.get("enabled") and d.ok(("screen", "port"), ("screen", "bind")) and port == screen.get("port") \
            and _same_host(host, screen.get("bind", "")):
        d.add(where, "[metrics] listen", raw, f"the same port as the line screen ([screen] port = {port})",
              "Choose another port for /metrics, e.g. 9108")
    elif d.ok(("plc", "port"), ("plc", "host")) and port == plc.get("port") \
            and plc.get("host") in ("127.0.0.1", "localhost", "::1"):
        d.add(where, "[metrics] listen", raw, f"the same port as the PLC on this PC ([plc] port = {port})",
              "Choose another port for /metrics, e.g. 9108")


def _same_host(a: str, b: str) -> bool:
    """Two listening addresses that would share a port: the same, or either one every address."""
    return a == b or a in ("0.0.0.0", "::") or b in ("0.0.0.0", "::")


# -- the sort plan ---------------------------------------------------------------------------------
def plan_problems(plan_path, geometry: LineGeometry, config_file: str) -> list[Problem]:
    """What is wrong with a plan file for this line: the plan's own first error, or every misfit."""
    from fastpath import PlanError
    from fastpath.plan_file import read_plan_file
    try:
        spec = read_plan_file(plan_path, len(geometry.chutes))
    except PlanError as exc:
        return [Problem(exc.file or str(plan_path), exc.line, exc.key, MISSING if exc.value is None else exc.value,
                        exc.problem, exc.remedy or "", message=str(exc))]
    return fit_problems(spec.path, spec.special, geometry, config_file)


def fit_problems(plan_path, special: dict, geometry: LineGeometry, config_file: str) -> list[Problem]:
    """A valid plan's special chutes against this line.

    The reject chute takes what nothing else can: it must be the end of the belt, where the PLC
    sends parcels on its own too. The plan already keeps destinations off its special chutes, so
    no destination can use the end chute either.
    """
    from fastpath import PlanError
    from fastpath.plan_file import read_plan_text
    from fastpath.toml_lines import key_lines, line_of
    end = geometry.end_chute
    if special["reject"] == end:
        return []
    try:
        line = line_of(key_lines(read_plan_text(plan_path)), ("special", "reject"))
    except PlanError:                    # changed since it was read: the message goes without a line
        line = None
    return [Problem(str(plan_path), line, "[special] reject", special["reject"],
                    f"the line's end chute is {end} ([line] end_chute in {config_file})",
                    f"Set reject = {end}: a rejected parcel rides to the end of the belt, as does every parcel "
                    "the PLC rejects on its own")]
