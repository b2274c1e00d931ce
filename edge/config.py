"""The technician's line config: TOML, strictly checked, every mistake reported at once.

Each message names the file, the line, the key, the value given and what is allowed, because the
person reading it is at the line with a text editor, not a debugger.
"""
import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sim_plc.geometry import Chute, LineGeometry


class ConfigError(Exception):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


@dataclass(frozen=True)
class Opt:
    kind: type
    default: object = None          # None: required
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    help: str = ""


SCHEMA = {
    "line": {
        "name": Opt(str, help="name shown on the screen and in records"),
        "belt_speed_m_s": Opt(float, lo=0.1, hi=5.0, help="belt speed in metres per second"),
        "encoder_mm_per_count": Opt(float, 1.0, lo=0.01, hi=100.0),
        "diverter": Opt(str, choices=("swing-arm", "pusher", "belt", "cross-belt", "narrow-belt")),
        "switch_time_ms": Opt(float, lo=0, hi=2000, help="time a diverter needs to move into place"),
        "plc_margin_ms": Opt(float, 20.0, lo=0, hi=1000, help="PLC scan cycle plus communication margin"),
        "end_chute": Opt(int, lo=1, hi=128, help="where parcels that are not diverted end up"),
        "chutes": Opt(list, help="one entry per chute: { number = 1, position_m = 1.5, side = \"left\" }"),
    },
    "plc": {
        "protocol": Opt(str, "modbus", choices=("modbus",)),
        "host": Opt(str, "127.0.0.1"),
        "port": Opt(int, 502, lo=1, hi=65535),
        "unit": Opt(int, 1, lo=0, hi=247),
        "plc_base": Opt(int, 0, lo=0, hi=65000, help="first register of the PLC-owned block"),
        "edge_base": Opt(int, 300, lo=0, hi=65000, help="first register of the controller-owned block"),
        "poll_interval_ms": Opt(float, 2.0, lo=0.5, hi=1000),
        "timeout_ms": Opt(float, 200.0, lo=10, hi=10000),
        "heartbeat_interval_ms": Opt(float, 100.0, lo=10, hi=5000),
        "heartbeat_timeout_ms": Opt(float, 500.0, lo=50, hi=30000),
    },
    "camera": {
        "source": Opt(str, "folder", choices=("folder",)),
        "folder": Opt(str, help="where the line camera drops one image per tracking number"),
        "image_wait_ms": Opt(float, 60.0, lo=0, hi=5000, help="how long to wait for a parcel's image"),
    },
    "vision": {
        "budget_ms": Opt(float, 60.0, lo=1, hi=5000, help="label reading time per parcel"),
    },
    "plan": {
        "file": Opt(str, help="sort plan file, relative to this config file"),
    },
    "records": {
        "folder": Opt(str, "var/records", help="where per-parcel records are kept, relative to this file"),
    },
}


@dataclass(frozen=True)
class LineConfig:
    path: Path
    values: dict                     # section -> key -> checked value
    geometry: LineGeometry

    def __getitem__(self, section: str) -> dict:
        return self.values[section]

    def resolve(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else (self.path.parent / p).resolve()


def _line_of(text: str, section: str, key: str | None) -> int:
    lines = text.splitlines()
    start = 0
    for i, line in enumerate(lines):
        if re.match(rf"\s*\[\s*{re.escape(section)}\s*\]", line):
            start = i
            if key is None:
                return i + 1
            break
    for i in range(start, len(lines)):
        if re.match(rf"\s*{re.escape(key or '')}\s*=", lines[i]):
            return i + 1
    return start + 1


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check(opt: Opt, value):
    """Return (value, None) or (None, what is allowed)."""
    if opt.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, opt.kind) or isinstance(value, bool) and opt.kind is not bool:
        return None, f"a {opt.kind.__name__}"
    if opt.choices and value not in opt.choices:
        return None, "one of " + ", ".join(f'"{c}"' for c in opt.choices)
    if opt.lo is not None and not opt.lo <= value <= opt.hi:
        return None, f"a number from {opt.lo:g} to {opt.hi:g}"
    return value, None


def load_config(path) -> LineConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc.strerror}"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}; fix the syntax at that place"]) from None
    errors, values = [], {}
    for section in raw:
        if section not in SCHEMA:
            errors.append(f"{path}:{_line_of(text, section, None)}: unknown section [{section}]"
                          f"{_suggest(section, SCHEMA)}; allowed sections: {', '.join(SCHEMA)}")
    for section, opts in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            errors.append(f"{path}: '{section}' must be a section [{section}]")
            continue
        values[section] = {}
        for key in given:
            if key not in opts:
                errors.append(f"{path}:{_line_of(text, section, key)}: [{section}] unknown key '{key}'"
                              f"{_suggest(key, opts)}; allowed keys: {', '.join(opts)}")
        for key, opt in opts.items():
            if key not in given:
                if opt.default is None:
                    errors.append(f"{path}: [{section}] {key} is missing; add it: {opt.help or opt.kind.__name__}")
                values[section][key] = opt.default
                continue
            value, allowed = _check(opt, given[key])
            if allowed:
                errors.append(f"{path}:{_line_of(text, section, key)}: [{section}] {key} = {given[key]!r} "
                              f"is not allowed: use {allowed}")
            values[section][key] = value
    geometry = None if errors else _geometry(path, text, values, errors)
    if errors:
        raise ConfigError(errors)
    return LineConfig(path, values, geometry)


def _geometry(path, text, values, errors) -> LineGeometry | None:
    line = values["line"]
    chutes, seen = [], set()
    where = f"{path}:{_line_of(text, 'line', 'chutes')}: [line] chutes"
    for i, entry in enumerate(line["chutes"]):
        if not isinstance(entry, dict) or set(entry) - {"number", "position_m", "side"} \
                or not isinstance(entry.get("number"), int) \
                or not isinstance(entry.get("position_m"), (int, float)) \
                or entry.get("side") not in ("left", "right", "end"):
            errors.append(f"{where}[{i}] = {entry!r} is not allowed: use "
                          '{ number = <1..128>, position_m = <metres from the scan point>, side = "left"|"right"|"end" }')
            continue
        if entry["number"] in seen:
            errors.append(f"{where}: chute {entry['number']} is listed twice; give each chute one entry")
        seen.add(entry["number"])
        chutes.append(Chute(entry["number"], float(entry["position_m"]), entry["side"]))
    if errors:
        return None
    if line["end_chute"] not in seen:
        errors.append(f"{path}: [line] end_chute = {line['end_chute']} is not one of the chutes listed in [line] chutes")
        return None
    g = LineGeometry(line["belt_speed_m_s"], line["switch_time_ms"] / 1000, line["plc_margin_ms"] / 1000,
                     tuple(chutes), line["end_chute"], line["encoder_mm_per_count"])
    needed_ms = values["camera"]["image_wait_ms"] + values["vision"]["budget_ms"]
    budget_ms = g.decision_after_scan_s * 1000
    if budget_ms < needed_ms:
        errors.append(f"{path}: the decision budget is {budget_ms:.0f} ms (first divert point "
                      f"{g.first_divert_m:g} m at {g.belt_speed_m_s:g} m/s, minus switch time and PLC margin) but "
                      f"[camera] image_wait_ms + [vision] budget_ms need {needed_ms:.0f} ms: lower those budgets, "
                      f"or check belt speed and chute positions")
    return g
