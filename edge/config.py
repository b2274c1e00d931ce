"""The technician's line config: one TOML file per line, strictly checked, every mistake at once.

SCHEMA is the one description of what a technician may set: the loader checks files against it
and docs/configuration.md is generated from it (`python -m edge.config_docs --write`). Each
message names the file, the line, the key, the value given and what is allowed, because the
person reading it is at the line with a text editor, not a debugger. Checks that involve
several keys (physics, chutes, the sort plan) live in edge/line_checks.py, the problems and how
they are printed in edge/config_problems.py.
"""
import difflib
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from edge.line_geometry import LineGeometry

from .config_problems import MISSING, ConfigError, Draft, Problem, print_errors, resolve_beside, toml_text

@dataclass(frozen=True)
class Opt:
    kind: type
    default: object = None          # None: required
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    help: str = ""
    item: dict | None = None        # kind list: every entry is a table with these keys
    blank: bool = False             # text of spaces only, or empty, is a value (a separator, no prefix)


CHUTE_ENTRY = {
    "number": Opt(int, lo=1, hi=128, help="chute number, as the PLC and the sort plan know it"),
    "position_m": Opt(float, lo=0, hi=1000, help="where its diverter sits along the belt, from the same "
                      "origin as [line] scan_point_m"),
    "side": Opt(str, choices=("left", "right", "end"), help='"left" or "right" of the belt, or "end" for the '
                'chute at the end of the belt'),
}

SCHEDULE_ENTRY = {
    "file": Opt(str, help="the plan in force meanwhile, relative to this file"),
    "days": Opt(list, help='the days it starts on: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] or some of them'),
    "from": Opt(str, help='when it starts, "HH:MM" (24-hour clock, the line PC\'s local time)'),
    "until": Opt(str, help='when it ends, "HH:MM"; "24:00" is midnight; earlier than from: the next day'),
}

SCHEMA = {
    "line": {
        "name": Opt(str, help="name shown on the line screen and in records"),
        "belt_speed_m_s": Opt(float, lo=0.1, hi=5.0, help="belt speed"),
        "scan_point_m": Opt(float, 0.0, lo=0, hi=1000, help="where the scan photo-eye sits along the belt; with 0 "
                            "the chute positions are measured from the photo-eye itself"),
        "encoder_mm_per_count": Opt(float, 1.0, lo=0.01, hi=100.0, help="belt travel per encoder count"),
        "diverter": Opt(str, choices=("swing-arm", "pusher", "belt", "cross-belt", "narrow-belt"),
                        help="kind of diverter at the chutes"),
        "switch_time_ms": Opt(float, lo=0, hi=2000, help="time a diverter needs to move into place"),
        "plc_margin_ms": Opt(float, 20.0, lo=0, hi=1000, help="PLC scan cycle plus communication margin"),
        "chute_width_m": Opt(float, 0.8, lo=0.1, hi=5.0, help="opening of a chute along the belt: two chutes "
                             "on the same side must be at least this far apart"),
        "end_chute": Opt(int, lo=1, hi=128, help="the chute at the end of the belt, where parcels that are not "
                         "diverted (no read, late, rejected) end up"),
        "chutes": Opt(list, item=CHUTE_ENTRY, help='one entry per chute, numbered 1, 2, 3, ... without gaps: '
                      '{ number = 1, position_m = 1.5, side = "left" }'),
    },
    "plc": {
        "protocol": Opt(str, "modbus", choices=("modbus", "opcua"), help='"modbus" (Modbus TCP) or "opcua" '
                        '(OPC UA); docs/plc-interface.md describes both'),
        "host": Opt(str, "127.0.0.1", help="the PLC's address on the line network"),
        "port": Opt(int, 502, lo=1, hi=65535, help="502 for Modbus TCP, 4840 for OPC UA on most PLCs"),
        "unit": Opt(int, 1, lo=0, hi=247, help="Modbus unit id"),
        "plc_base": Opt(int, 0, lo=0, hi=65000, help="first register of the PLC-owned block"),
        "edge_base": Opt(int, 300, lo=0, hi=65000, help="first register of the controller-owned block"),
        "poll_interval_ms": Opt(float, 2.0, lo=0.5, hi=1000, help="Modbus: pause between two reads of the PLC "
                                "block (OPC UA pushes changes instead)"),
        "timeout_ms": Opt(float, 200.0, lo=10, hi=10000, help="longest wait for one answer from the PLC"),
        "heartbeat_interval_ms": Opt(float, 100.0, lo=10, hi=5000),
        "heartbeat_timeout_ms": Opt(float, 500.0, lo=50, hi=30000),
        "reconnect_max_ms": Opt(float, 500.0, lo=50, hi=60000, help="longest pause between two attempts to "
                                "reach a PLC that does not answer"),
        "opcua_path": Opt(str, "", help='OPC UA endpoint path after host:port, e.g. "/sorter/"'),
        "opcua_namespace": Opt(str, "urn:sortline:plc", help="namespace URI of the interface variables"),
        "opcua_security": Opt(str, "none", choices=("none", "sign-and-encrypt"), help='"sign-and-encrypt": '
                              "Basic256Sha256, every message signed and encrypted"),
        "opcua_certificate": Opt(str, "", help="this controller's certificate (DER or PEM), relative to this file"),
        "opcua_private_key": Opt(str, "", help="the private key of opcua_certificate (PEM), relative to this file"),
        "opcua_server_certificate": Opt(str, "", help="the PLC's own certificate, relative to this file: the "
                                        "link talks to no other server"),
        "opcua_auth": Opt(str, "anonymous", choices=("anonymous", "username", "certificate"), help='how the '
                          'controller logs in; "certificate" uses opcua_certificate'),
        "opcua_username": Opt(str, "", help="user name the PLC knows the controller by"),
        "opcua_password": Opt(str, "", help="its password, written here (prefer opcua_password_file)"),
        "opcua_password_file": Opt(str, "", help="a file holding the password on its first line, relative to "
                                   "this file, readable by the controller's user only (chmod 600): the line "
                                   "config can then be shown and copied without the password"),
    },
    "camera": {
        "source": Opt(str, "folder", choices=("folder",), help="how images arrive: the line camera drops one "
                      "file per parcel into a folder"),
        "folder": Opt(str, help="where the line camera drops one image per tracking number"),
        "image_wait_ms": Opt(float, 60.0, lo=0, hi=5000, help="stage budget: how long to wait for a parcel's "
                             "image after the scan"),
        "keep_images": Opt(int, 2000, lo=0, hi=10_000_000, help="images kept in the folder, the newest; older "
                           "ones are deleted every 10 s (the folder is often in RAM: 40,000 parcels an hour "
                           "bring about 12 GB). 0: keep all, when another program empties the folder"),
    },
    "vision": {
        "budget_ms": Opt(float, 60.0, lo=1, hi=5000, help="stage budget: label reading time per parcel"),
        "text_reading": Opt(str, "when-needed", choices=("when-needed", "always"),
                            help='"when-needed": read the printed text only when the barcode alone does not '
                                 'route the parcel by pre-advice (about 4x faster); "always": read and '
                                 'cross-check the text on every label'),
        "hedge_reads": Opt(bool, True, help="when a second label reader is idle, it reads the same image too and "
                           "the first answer counts: a core taken away for a moment (a virtual machine's host, "
                           "other work) does not make the parcel late. Costs idle CPU only"),
    },
    "reader": {
        "mode": Opt(str, "off", choices=("off", "client", "server"), help='a smart code reader that sends each '
                    'parcel\'s codes over TCP (docs/equipment.md): "client": the controller connects to the '
                    'reader\'s TCP server; "server": the controller listens and the reader connects; "off": none'),
        "host": Opt(str, "127.0.0.1", help='"client": the reader\'s address; "server": the address the controller '
                    'listens on ("0.0.0.0": every network of this PC)'),
        "port": Opt(int, 2001, lo=1, hi=65535, help="the TCP port set in the reader's network output"),
        "framing": Opt(str, "line", choices=("line", "stx-etx"), help='how one result ends: "line": CR, LF or CR LF '
                       'after each result; "stx-etx": each result between STX (02 hex) and ETX (03 hex)'),
        "prefix": Opt(str, "", blank=True, help="fixed text every result begins with (a header set in the "
                      "reader), removed before the template or pattern"),
        "template": Opt(str, "{codes}", help="the fields of a result in the reader's order: {trigger} (its "
                        "trigger or sequence number), {codes} (the codes read), {skip} (anything else, e.g. a "
                        'time); "{trigger},{codes}" reads 1201,SF1234567890123'),
        "pattern": Opt(str, "", help="instead of template: a regular expression with the named groups "
                       "(?P<codes>...) and optionally (?P<trigger>...), matched against the whole result"),
        "code_separator": Opt(str, ";", blank=True, help="what separates several codes in {codes}"),
        "no_read": Opt(str, "NoRead", help="what the reader sends instead of codes when it read none (upper or "
                       "lower case alike)"),
        "match": Opt(str, "time", choices=("trigger", "time"), help='which parcel a result belongs to: "trigger": '
                     "its trigger id is the PLC's tracking number; \"time\": the latest scan at most wait_ms before "
                     "the result"),
        "wait_ms": Opt(float, 60.0, lo=1, hi=5000, help="stage budget: how long a parcel waits for the reader's "
                       "result after its scan, beside the wait for its image"),
        "read_images": Opt(bool, True, help="read the camera's image of a parcel the code reader did not route "
                           "(no read, no result in time, a waybill without pre-advice); false on a line whose "
                           "camera uploads no images"),
        "max_frame_bytes": Opt(int, 1024, lo=16, hi=65536, help="longest result accepted; a longer one is thrown "
                               "away and counted"),
        "reconnect_max_ms": Opt(float, 2000.0, lo=50, hi=60000, help='"client": longest pause between two attempts '
                                "to reach a reader that does not answer"),
    },
    "scale": {
        "mode": Opt(str, "off", choices=("off", "client", "server"), help='a scale or dimensioner (DWS) that sends '
                    "each parcel's weight, and its sides, over TCP (docs/equipment.md, Scale and dimensioner): "
                    '"client": the controller connects to the scale; "server": the scale connects; "off": none'),
        "host": Opt(str, "127.0.0.1", help='"client": the scale\'s address; "server": the address the controller '
                    'listens on ("0.0.0.0": every network of this PC)'),
        "port": Opt(int, 2002, lo=1, hi=65535, help="the TCP port set in the scale's network output"),
        "framing": Opt(str, "line", choices=("line", "stx-etx"), help='how one weighing ends: "line": CR, LF or '
                       'CR LF; "stx-etx": each weighing between STX (02 hex) and ETX (03 hex)'),
        "fields": Opt(str, "id,weight,length,width,height", help="the fields of a weighing in the scale's order, "
                      "comma-separated: id (the PLC's tracking number), weight, length, width, height (mm; all "
                      "three or none; a line may leave them out), skip (anything else)"),
        "separator": Opt(str, ",", blank=True, help='what separates the fields in the scale\'s line (" ": spaces)'),
        "weight_unit": Opt(str, "kg", choices=("kg", "g"), help='unit of a weight sent without one; "2.35kg" or '
                           '"2350g" say their own'),
        "max_weight_kg": Opt(float, 100.0, lo=1, hi=5000, help="heavier is not a parcel but a fault (the scale's "
                             "calibration, its unit): counted, alarmed and not used"),
        "max_side_mm": Opt(float, 3000.0, lo=100, hi=20000, help="a longer side is a fault of the dimensioner: "
                           "counted, alarmed and not used"),
        "max_frame_bytes": Opt(int, 256, lo=16, hi=65536, help="longest weighing line accepted; a longer one is "
                               "thrown away and counted"),
        "reconnect_max_ms": Opt(float, 2000.0, lo=50, hi=60000, help='"client": longest pause between two attempts '
                                "to reach a scale that does not answer"),
    },
    "budgets": {
        "decide_ms": Opt(float, 5.0, lo=0.1, hi=1000, help="stage budget: the routing decision, chute states "
                         "included"),
        "assign_ms": Opt(float, 20.0, lo=1, hi=2000, help="stage budget: writing the assignment to the PLC"),
    },
    "plan": {
        "file": Opt(str, help="sort plan file, relative to this config file; it names its own pre-advice files"),
        "watch": Opt(bool, True, help="reload the plan by itself when the plan file or one of its pre-advice "
                     "files changes"),
        "watch_interval_ms": Opt(float, 1000.0, lo=100, hi=60000, help="how often those files are looked at"),
        "reload_timeout_s": Opt(float, 60.0, lo=1, hi=600, help="a new plan that takes longer to build is "
                                "refused and the active one stays"),
        "schedule": Opt(list, [], item=SCHEDULE_ENTRY, help="other plans at set times of the week, e.g. morning "
                        "and afternoon delivery runs ([[plan.schedule]] entries, docs/sort-plan.md); [plan] file is "
                        "in force whenever none of them is"),
    },
    "records": {
        "folder": Opt(str, "var/records", help="where per-parcel records are kept, relative to this file; the "
                      "control socket for `sortline reload` lives here too"),
        "retention_days": Opt(int, 90, lo=1, hi=3650, help="parcel records older than this are deleted"),
    },
    "screen": {
        "enabled": Opt(bool, True, help="serve the line screen"),
        "bind": Opt(str, "127.0.0.1", help='address the line screen listens on: "127.0.0.1" keeps it on this PC, '
                    'the PC\'s address on the line network opens it there'),
        "port": Opt(int, 8480, lo=1, hi=65535, help="TCP port of the line screen"),
        "token_file": Opt(str, "", help="file of technician tokens that screen actions need, relative to this "
                          "file; left out: screen-tokens.txt in the records folder"),
        "allowed_hosts": Opt(str, "", help="other names of this PC on the site's network that the line screen "
                             "answers to, comma-separated (\"sorter-3.line.example, sorter-3\"); its bind address, "
                             "localhost and the PC's own host name need no entry"),
    },
    "metrics": {
        "enabled": Opt(bool, True, help="serve /metrics for Prometheus on an address of its own, without the line "
                       "screen's login (docs/operations.md)"),
        "listen": Opt(str, "127.0.0.1:9108", help='address and port of /metrics: "127.0.0.1:9108" keeps it on this '
                      'PC; the PC\'s address on the site network ("192.168.1.20:9108") lets a Prometheus elsewhere '
                      "scrape it. The figures name no parcel"),
    },
}

KIND_TEXT = {int: "a whole number", float: "a number", str: "text in quotes", bool: "true or false",
             list: "a list", dict: "a table"}
UNITS = (("_m_s", "m/s"), ("_mm_per_count", "mm"), ("_ms", "ms"), ("_m", "m"), ("_s", "s"), ("_days", "days"))


@dataclass(frozen=True)
class LineConfig:
    path: Path
    values: dict                     # section -> key -> checked value
    geometry: LineGeometry

    def __getitem__(self, section: str) -> dict:
        return self.values[section]

    def resolve(self, relative: str) -> Path:
        return resolve_beside(self.path, relative)

    @property
    def plan_path(self) -> Path:
        return self.resolve(self.values["plan"]["file"])

    @property
    def records_folder(self) -> Path:
        return self.resolve(self.values["records"]["folder"])

    @property
    def stage_budgets_ms(self) -> dict:
        v = self.values
        return {"image": v["camera"]["image_wait_ms"], "read": v["vision"]["budget_ms"],
                "decide": v["budgets"]["decide_ms"], "assign": v["budgets"]["assign_ms"]}


def unit_of(key: str) -> str:
    for suffix, unit in UNITS:
        if key.endswith(suffix):
            return unit
    return ""


def allowed_text(key: str, opt: Opt) -> str:
    if opt.choices:
        return "one of " + ", ".join(toml_text(c) for c in opt.choices)
    text = KIND_TEXT[opt.kind]
    if opt.lo is not None:
        unit = unit_of(key)
        text += f" from {opt.lo:g} to {opt.hi:g}" + (f" {unit}" if unit else "")
    return text


def close_matches(word, options) -> list[str]:
    return difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)


def suggest(word, options, quote=str) -> str:
    close = close_matches(word, options)
    return f" (did you mean {quote(close[0])}?)" if close else ""


def check_value(key: str, opt: Opt, value):
    """(checked value, None), or (None, (problem, remedy)) for a value that is not allowed."""
    if opt.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, opt.kind) or isinstance(value, bool) != (opt.kind is bool):
        if opt.kind is bool:
            return None, ("must be true or false", f"Write {key} = true or {key} = false, without quotes")
        return None, (f"must be {KIND_TEXT[opt.kind]}", "Allowed: " + allowed_text(key, opt))
    if opt.choices and value not in opt.choices:
        return None, ("not an allowed value" + suggest(value, opt.choices, toml_text),
                      "Allowed: " + allowed_text(key, opt))
    if opt.lo is not None and not opt.lo <= value <= opt.hi:
        return None, ("out of range", "Allowed: " + allowed_text(key, opt))
    if opt.kind is str and not value.strip() and not opt.blank:
        return None, ("must not be empty", "Write a value between the quotes" + (f": {opt.help}" if opt.help else ""))
    return value, None


# -- where things are in the file ---------------------------------------------------------------------
# -- loading ----------------------------------------------------------------------------------------
def load_config(path) -> LineConfig:
    """Read and check a line config and the fit of its sort plan; raises ConfigError with every problem."""
    from . import line_checks
    from fastpath import text_files
    path = Path(path)
    try:
        text = text_files.read_text(path, text_files.CONFIG)
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), None, None, MISSING, "the config file does not exist",
                                   "Check the path, or copy one from configs/")]) from None
    except text_files.FileRefused as exc:
        raise ConfigError([Problem(str(path), exc.line, None, MISSING, exc.problem, exc.remedy)]) from None
    except OSError as exc:
        raise ConfigError([Problem(str(path), None, None, MISSING, f"cannot read the config file: {exc.strerror}",
                                   "Check the path and the file's permissions")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise ConfigError([Problem(str(path), int(found.group(1)) if found else None, None, MISSING,
                                   f"not valid TOML: {exc}",
                                   'Fix the syntax there: text in quotes (name = "Line 1"), each key once '
                                   "per section, lists in [ ]")]) from None
    draft = Draft(path, text, raw)
    _check_sections(draft)
    if draft.values["screen"]["token_file"] == "" and draft.ok(("records", "folder")):
        draft.values["screen"]["token_file"] = str(Path(draft.values["records"]["folder"]) / "screen-tokens.txt")
    geometry = line_checks.check_all(draft)
    if draft.problems:
        # In the order of the file, as the technician reads it; the plan's own come after.
        raise ConfigError(sorted(draft.problems, key=lambda p: (p.file != draft.file, p.line is None, p.line or 0)))
    return LineConfig(path, draft.values, geometry)


def load_or_exit(path):
    """The config, or every problem in it printed and the program ended (exit status 1)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print_errors(path, exc.problems)
        sys.exit(1)


def _check_sections(d: Draft) -> None:
    for section, given in d.raw.items():
        if section not in SCHEMA:
            d.add(d.at(section), f"[{section}]", MISSING, "unknown section" + suggest(section, SCHEMA, "[{}]".format),
                  "Sections are: " + ", ".join(f"[{s}]" for s in SCHEMA))
    for section, opts in SCHEMA.items():
        given = d.raw.get(section, {})
        d.values[section] = {}
        if not isinstance(given, dict):
            d.add(d.at(section), f"[{section}]", given, "must be a section",
                  f"Write [{section}] on a line of its own, then its keys as key = value lines")
            d.bad.update((section, key) for key in opts)
            continue
        meant = set()
        for key, value in given.items():
            if key not in opts:
                d.add(d.at(section, key), f"[{section}] {key}", value, *_unknown_key(section, key))
                meant.update(close_matches(key, opts))
        for key, opt in opts.items():
            d.values[section][key] = _check_key(d, section, key, opt, given, quiet_if_missing=key in meant)


def _unknown_key(section: str, key: str) -> tuple[str, str]:
    homes = [s for s, opts in SCHEMA.items() if key in opts and s != section]
    if homes:
        return (f"unknown key in [{section}]; it belongs in " + " or ".join(f"[{s}]" for s in homes),
                f"Move it under [{homes[0]}]")
    return ("unknown key" + suggest(key, SCHEMA[section]),
            f"Keys in [{section}]: " + ", ".join(SCHEMA[section]))


def _check_key(d: Draft, section: str, key: str, opt: Opt, given: dict, quiet_if_missing: bool):
    if key not in given:
        if opt.default is None:
            d.bad.add((section, key))
            if not quiet_if_missing:     # the misspelt key's message already says which key was meant
                d.add(d.at(section), f"[{section}] {key}", MISSING, "missing",
                      f"Add {key} = <{allowed_text(key, opt)}> under [{section}]"
                      + (f": {opt.help}" if opt.help else ""))
        return opt.default
    value, refused = check_value(key, opt, given[key])
    if refused:
        d.bad.add((section, key))
        d.add(d.at(section, key), f"[{section}] {key}", given[key], *refused)
        return None
    if opt.item is not None:
        return _check_entries(d, section, key, opt.item, value)
    return value


def _check_entries(d: Draft, section: str, key: str, item: dict, entries: list) -> list:
    checked = []
    example = "{ " + ", ".join(f"{k} = <{allowed_text(k, o)}>" for k, o in item.items()) + " }"
    for index, entry in enumerate(entries):
        label, line = f"[{section}] {key} #{index + 1}", d.at.entry(section, key, index)
        if not isinstance(entry, dict):
            d.bad.add((section, key))
            d.add(line, label, entry, "must be a table", f"Write {example}")
            continue
        row, meant = {}, set()
        for name, value in entry.items():
            if name not in item:
                d.bad.add((section, key))
                d.add(d.at.entry(section, key, index, name), f"{label} {name}", value, "unknown key" + suggest(name, item),
                      "Keys of an entry: " + ", ".join(item))
                meant.update(close_matches(name, item))
        for name, opt in item.items():
            if name not in entry:
                d.bad.add((section, key))
                if name not in meant:
                    d.add(line, f"{label} {name}", MISSING, "missing",
                          f"Add {name} = <{allowed_text(name, opt)}> to this entry")
                continue
            value, refused = check_value(name, opt, entry[name])
            if refused:
                d.bad.add((section, key))
                d.add(d.at.entry(section, key, index, name), f"{label} {name}", entry[name], *refused)
            row[name] = value
        checked.append(row)
    return checked
