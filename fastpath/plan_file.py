"""Reading and checking a sort plan file (TOML) into plain Python values.

Every key is typed and bounded, unknown keys are errors, and each error names the file,
the line, the key, the value given and what to write instead. Compiling the checked plan
into lookup tables is plan.py's job.
"""
import dataclasses
import difflib
import pathlib
import re
import tomllib

from . import couriers as courier_formats
from . import routing_code
from . import text_files
from .errors import PlanError
from .toml_lines import key_lines, line_of

SPREADS = ("round_robin", "first_available")
SPECIAL_KEYS = ("no_read", "multi_read", "no_rule", "overflow", "reject")
MAX_CHUTES = 999
MAX_DESTINATIONS = 65535
MAX_COURIERS = 250
MAX_ALL_COURIERS = 255       # a decision carries its courier in one byte (0: none)
_SECTIONS = ("plan", "special", "couriers", "destinations", "routes", "courier_rules", "overrides", "preadvice",
             "weights")
WEIGHT_KEYS = ("overweight_kg", "overweight_chute", "oversize_mm", "oversize_chute")
MAX_WEIGHT_KG = 5000
MAX_SIDE_MM = 20000


@dataclasses.dataclass
class RouteRule:
    kind: str              # "code", "prefix" or "range"
    text: str              # as written: "571-J25-03", "571-J25" or "571-J25-01..571-J25-09"
    destination: str
    index: int             # 0-based position among the [[routes]] entries
    canon: bytes = b""     # canonical code or prefix; for a range, the parent
    low: int = 0           # range bounds (last segment, as numbers)
    high: int = 0


@dataclasses.dataclass
class Override:
    courier: str
    chutes: list
    destinations: list     # empty: every parcel of the courier
    index: int             # 0-based position among the [[overrides]] entries


@dataclasses.dataclass
class PlanSpec:
    path: pathlib.Path
    n_chutes: int
    version: str
    name: str
    spread: str
    special: dict
    couriers: list          # [(name, [masks, ...], s10)]: the plan's in file order, then the defaults
    destinations: list      # [(name, [chutes], spread)], file order
    routes: list
    courier_rules: dict     # courier -> destination
    overrides: list
    preadvice_files: list
    weights: dict = dataclasses.field(default_factory=dict)   # [weights]: the limits and their chutes


def _suggest(value, allowed):
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Checker:
    def __init__(self, path, text, n_chutes):
        self.path = path
        self.text = text
        self.n_chutes = n_chutes
        self._lines = None

    @property
    def lines(self):
        # Only needed for messages: scanned on the first one, not for every good plan.
        if self._lines is None:
            self._lines = key_lines(self.text)
        return self._lines

    def fail(self, where, label, value, problem, remedy):
        raise PlanError(problem, file=self.path, line=line_of(self.lines, where), key=label,
                        value=value, remedy=remedy)

    def line(self, where):
        return line_of(self.lines, where)

    def table(self, value, where, label, allowed=None, required=()):
        if not isinstance(value, dict):
            self.fail(where, label, None, "must be a table", f"write it as {label} followed by key = value lines")
        for key in value:
            if allowed is not None and key not in allowed:
                self.fail(where + (key,), f"{label} {key}", None, "unknown key" + _suggest(key, allowed),
                          "allowed keys here: " + ", ".join(allowed))
        for key in required:
            if key not in value:
                self.fail(where, label, None, f"the key '{key}' is missing", f"add {key} = ... to this table")
        return value

    def string(self, table, key, where, label, default=None):
        value = table.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.fail(where + (key,), f"{label} {key}", value, "must be a non-empty text in quotes",
                      f'write {key} = "..."')
        return value

    def chute(self, value, where, label, what="a chute number"):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self.n_chutes:
            self.fail(where, label, value, f"{what} must be a whole number from 1 to {self.n_chutes}",
                      f"this line has {self.n_chutes} chutes; use one of them")
        return value

    def chute_list(self, table, key, where, label, special):
        value = table.get(key)
        if not isinstance(value, list) or not value:
            self.fail(where + (key,), f"{label} {key}", value, "must be a list of chute numbers",
                      f"write {key} = [3, 4]")
        seen = set()
        for chute in value:
            self.chute(chute, where + (key,), f"{label} {key}", "each chute")
            if chute in seen:
                self.fail(where + (key,), f"{label} {key}", value, f"chute {chute} is listed twice",
                          "list each chute once")
            roles = [role for role, number in special.items() if number == chute]
            if roles:
                self.fail(where + (key,), f"{label} {key}", value,
                          f"chute {chute} is the {roles[0]} chute in [special]",
                          "use chutes that are not special here, or change [special]")
            seen.add(chute)
        return value

    def name_ref(self, table, key, where, label, known, kind, section):
        value = self.string(table, key, where, label)
        if value not in known:
            self.fail(where + (key,), f"{label} {key}", value, f"no such {kind}" + _suggest(value, known),
                      f"use one of the names under [{section}]")
        return value


def read_plan_text(path):
    """The plan file's text (text_files.read_text: a regular file of at most 16 MB, UTF-8, a
    BOM skipped); PlanError with the remedy otherwise."""
    try:
        return text_files.read_text(path, text_files.PLAN)
    except FileNotFoundError:
        raise PlanError("the plan file does not exist", file=path,
                        remedy="check the path, or copy one from configs/plans/") from None
    except text_files.FileRefused as exc:
        raise PlanError(exc.problem, file=path, line=exc.line, remedy=exc.remedy) from None
    except OSError as exc:
        raise PlanError(f"cannot read the plan file: {exc.strerror}", file=path,
                        remedy="check the file's permissions: the controller's user must be able to read it") from None


def read_plan_file(path, n_chutes):
    path = pathlib.Path(path)
    if isinstance(n_chutes, bool) or not isinstance(n_chutes, int) or not 1 <= n_chutes <= MAX_CHUTES:
        raise PlanError(f"the line must have 1..{MAX_CHUTES} chutes, not {n_chutes!r}", file=path,
                        remedy="check the chute count in the line configuration")
    text = read_plan_text(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        raise PlanError(f"this is not valid TOML: {exc}", file=path, line=line,
                        remedy="fix the syntax; quote text values, e.g. name = \"Dongguan\"") from None
    return _check(_Checker(path, text, n_chutes), doc)


def _check(c, doc):
    for section in doc:
        if section not in _SECTIONS:
            c.fail((section,), f"[{section}]", None, "unknown section" + _suggest(section, _SECTIONS),
                   "sections are: " + ", ".join(f"[{s}]" for s in _SECTIONS))
    plan = c.table(doc.get("plan", {}), ("plan",), "[plan]", ("version", "name", "spread", "default_couriers"),
                   required=("version",))
    version = c.string(plan, "version", ("plan",), "[plan]")
    name = c.string(plan, "name", ("plan",), "[plan]", default=version)
    spread = plan.get("spread", "round_robin")
    if spread not in SPREADS:
        c.fail(("plan", "spread"), "[plan] spread", spread, "unknown spread policy" + _suggest(spread, SPREADS),
               "use " + " or ".join(f'"{s}"' for s in SPREADS))

    special_table = c.table(doc.get("special", {}), ("special",), "[special]", SPECIAL_KEYS, required=SPECIAL_KEYS)
    special = {key: c.chute(special_table[key], ("special", key), f"[special] {key}") for key in SPECIAL_KEYS}

    use_defaults = plan.get("default_couriers", True)
    if not isinstance(use_defaults, bool):
        c.fail(("plan", "default_couriers"), "[plan] default_couriers", use_defaults, "must be true or false",
               "write default_couriers = false to use only the plan's own [couriers], or leave it out")
    couriers = _check_couriers(c, doc)
    if use_defaults:
        couriers = with_default_couriers(couriers)
        if len(couriers) > MAX_ALL_COURIERS:
            c.fail(("couriers",), "[couriers]", None,
                   f"{len(couriers)} couriers with the default ones; at most {MAX_ALL_COURIERS}",
                   "merge couriers that share formats, or write default_couriers = false under [plan]")
    courier_names = [name for name, _, _ in couriers]
    destinations = _check_destinations(c, doc, special, spread)
    destination_names = [name for name, _, _ in destinations]
    routes = _check_routes(c, doc, destination_names)
    rules = _check_courier_rules(c, doc, courier_names, destination_names)
    overrides = _check_overrides(c, doc, special, courier_names, destination_names)

    pre = c.table(doc.get("preadvice", {}), ("preadvice",), "[preadvice]", ("files",))
    files = pre.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) and f.strip() for f in files):
        c.fail(("preadvice", "files"), "[preadvice] files", files, "must be a list of file names",
               'write files = ["preadvice.csv"] (paths relative to the plan file)')
    preadvice_files = [c.path.parent / f for f in files]
    weights = _check_weights(c, doc, destinations, overrides)
    return PlanSpec(c.path, c.n_chutes, version, name, spread, special, couriers, destinations, routes,
                    rules, overrides, preadvice_files, weights)


def _check_weights(c, doc, destinations, overrides):
    """[weights]: a parcel heavier than overweight_kg, or with a side longer than oversize_mm, goes
    to its own chute, when the scale weighed it before the decision (docs/sort-plan.md)."""
    table = c.table(doc.get("weights", {}), ("weights",), "[weights]", WEIGHT_KEYS)
    taken = {chute: f'[destinations."{name}"]' for name, chutes, _ in destinations for chute in chutes}
    taken.update({chute: "an [[overrides]] entry" for o in overrides for chute in o.chutes})
    weights = {}
    for limit, chute_key, top, unit in (("overweight_kg", "overweight_chute", MAX_WEIGHT_KG, "kg"),
                                        ("oversize_mm", "oversize_chute", MAX_SIDE_MM, "mm")):
        if limit not in table and chute_key not in table:
            continue
        for given, missing in ((limit, chute_key), (chute_key, limit)):
            if given in table and missing not in table:
                c.fail(("weights", given), f"[weights] {given}", table[given], f"given without {missing}",
                       f"write both {limit} and {chute_key}, or neither")
        value = table[limit]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= top:
            c.fail(("weights", limit), f"[weights] {limit}", value, f"must be a number above 0 and at most {top} {unit}",
                   f"write e.g. {limit} = {30 if unit == 'kg' else 1200}")
        chute = c.chute(table[chute_key], ("weights", chute_key), f"[weights] {chute_key}")
        if chute in taken:
            c.fail(("weights", chute_key), f"[weights] {chute_key}", chute, f"chute {chute} is a chute of {taken[chute]}",
                   "give these parcels a chute of their own (or a [special] one, e.g. the reject chute)")
        weights[limit], weights[chute_key] = float(value), chute
    return weights


def _check_couriers(c, doc):
    table = c.table(doc.get("couriers", {}), ("couriers",), "[couriers]")
    if len(table) > MAX_COURIERS:
        c.fail(("couriers",), "[couriers]", None, f"{len(table)} couriers; at most {MAX_COURIERS}",
               "merge couriers that share formats")
    result = []
    seen_formats = {}
    for name, body in table.items():
        where = ("couriers", name)
        label = f"[couriers.{name}]" if name.isidentifier() else f'[couriers."{name}"]'
        body = c.table(body, where, label, ("formats", "s10", "title"))
        formats = body.get("formats", [])
        s10 = body.get("s10", False)
        if not isinstance(s10, bool):
            c.fail(where + ("s10",), f"{label} s10", s10, "must be true or false", "write s10 = true")
        if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats) or not (formats or s10):
            c.fail(where + ("formats",), f"{label} formats", formats, "must be a list of waybill formats",
                   'write formats = ["SF#{13}"] (# digit, @ letter, [XK] one of, {n} repeat)')
        compiled = []
        for template in formats:
            try:
                masks = courier_formats.compile_format(template)
            except courier_formats.FormatError as exc:
                c.fail(where + ("formats",), f"{label} formats", template, str(exc),
                       'write formats like "SF#{13}" or "JD[XK]#{12}"')
            if masks in seen_formats:
                c.fail(where + ("formats",), f"{label} formats", template,
                       f"the same format is already given for courier {seen_formats[masks]!r}",
                       "remove one of them: the first courier in the file would always win")
            seen_formats[masks] = name
            compiled.append(masks)
        result.append((name, compiled, s10))
    return result


def with_default_couriers(couriers):
    """The plan's couriers, then the default couriers it does not name (fastpath/default_couriers.toml).

    A plan's courier replaces the default of the same name whole (its formats and s10), and the
    plan's come first, so that a format the technician wrote always wins over a default one. A
    default format the plan already gives to one of its couriers is left out: the plan decided.
    """
    own_names = {name for name, _, _ in couriers}
    own_formats = {masks for _, formats, _ in couriers for masks in formats}
    merged = list(couriers)
    for default in courier_formats.default_rules()[0]:
        if default.name in own_names:
            continue
        formats = [masks for masks in default.masks if masks not in own_formats]
        if formats or default.s10:
            merged.append((default.name, formats, default.s10))
    return merged


def _check_destinations(c, doc, special, spread):
    table = c.table(doc.get("destinations", {}), ("destinations",), "[destinations]")
    if not table:
        c.fail(("destinations",), "[destinations]", None, "the plan has no destinations",
               'add at least one, e.g. [destinations."Dongguan"] with chutes = [3, 4]')
    if len(table) > MAX_DESTINATIONS:
        c.fail(("destinations",), "[destinations]", None, f"{len(table)} destinations; at most {MAX_DESTINATIONS}",
               "merge destinations that share chutes")
    result = []
    for name, body in table.items():
        where = ("destinations", name)
        label = f'[destinations."{name}"]'
        if name != name.strip() or "," in name or not name:
            c.fail(where, label, None, "a destination name cannot be empty, contain a comma or start or end with spaces",
                   "pre-advice files are 'waybill,destination' lines: rename it, e.g. \"Dongguan village\"")
        body = c.table(body, where, label, ("chutes", "spread"), required=("chutes",))
        chutes = c.chute_list(body, "chutes", where, label, special)
        own_spread = body.get("spread", spread)
        if own_spread not in SPREADS:
            c.fail(where + ("spread",), f"{label} spread", own_spread,
                   "unknown spread policy" + _suggest(own_spread, SPREADS),
                   "use " + " or ".join(f'"{s}"' for s in SPREADS))
        result.append((name, chutes, own_spread))
    return result


def _array_of_tables(c, doc, section, example):
    items = doc.get(section, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        c.fail((section,), f"[[{section}]]", None, "must be a list of tables",
               f"write each entry as [[{section}]] followed by {example}")
    return items


def _check_routes(c, doc, destinations):
    result = []
    exact, prefixes, ranges = {}, {}, {}
    for index, body in enumerate(_array_of_tables(c, doc, "routes", 'code = "571-J25-03" and destination = "..."')):
        where = ("routes", index)
        label = f"[[routes]] #{index + 1}"
        c.table(body, where, label, ("code", "prefix", "range", "destination"), required=("destination",))
        kinds = [k for k in ("code", "prefix", "range") if k in body]
        if len(kinds) != 1:
            c.fail(where, label, None, "a route needs exactly one of code, prefix or range"
                   + (f" (it has {', '.join(kinds)})" if kinds else ""),
                   "split it into one [[routes]] entry per rule")
        kind = kinds[0]
        destination = c.name_ref(body, "destination", where, label, destinations, "destination", "destinations")
        value = body[kind]
        if kind == "range":
            rule = _check_range(c, where, label, value, destination, index)
            for other in ranges.get(rule.canon, []):
                if rule.low <= other.high and other.low <= rule.high:
                    c.fail(where + ("range",), f"{label} range", value,
                           f"overlaps the range {other.text} on line {c.line(('routes', other.index))}",
                           "make the ranges of one route prefix disjoint")
            ranges.setdefault(rule.canon, []).append(rule)
        else:
            segments = routing_code.split_rule_code(value) if isinstance(value, str) else None
            if segments is None:
                c.fail(where + (kind,), f"{label} {kind}", value,
                       "must be a routing code: letters and digits in segments joined by '-'",
                       f'write {kind} = "571-J25-03"' if kind == "code" else f'write {kind} = "571-J25"')
            canon = "-".join(segments).encode("ascii")
            seen = exact if kind == "code" else prefixes
            if canon in seen:
                c.fail(where + (kind,), f"{label} {kind}", value,
                       f"the same {kind} is already routed on line {c.line(('routes', seen[canon].index))}",
                       "keep one rule per code; delete or change the other")
            rule = RouteRule(kind, value, destination, index, canon)
            seen[canon] = rule
        result.append(rule)
    return result


def _check_range(c, where, label, value, destination, index):
    remedy = 'write range = ["571-J25-01", "571-J25-09"] (same prefix, numeric last segment)'
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        c.fail(where + ("range",), f"{label} range", value, "must be a list of two routing codes", remedy)
    low, high = (routing_code.split_rule_code(v) for v in value)
    if low is None or high is None or len(low) != len(high) or low[:-1] != high[:-1]:
        c.fail(where + ("range",), f"{label} range", value, "both ends must share every segment but the last",
               remedy)
    if not (low[-1].isdigit() and high[-1].isdigit()) or max(len(low[-1]), len(high[-1])) > routing_code.MAX_RANGE_DIGITS:
        c.fail(where + ("range",), f"{label} range", value,
               f"the last segment of both ends must be a number of 1..{routing_code.MAX_RANGE_DIGITS} digits",
               remedy)
    if int(low[-1]) > int(high[-1]):
        c.fail(where + ("range",), f"{label} range", value, "the first end is above the second",
               "write the lower code first")
    parent = "-".join(low[:-1]).encode("ascii")
    return RouteRule("range", f"{value[0]}..{value[1]}", destination, index, parent, int(low[-1]), int(high[-1]))


def _check_courier_rules(c, doc, couriers, destinations):
    rules = {}
    lines = {}
    for index, body in enumerate(_array_of_tables(c, doc, "courier_rules", 'courier = "JD" and destination = "..."')):
        where = ("courier_rules", index)
        label = f"[[courier_rules]] #{index + 1}"
        c.table(body, where, label, ("courier", "destination"), required=("courier", "destination"))
        courier = c.name_ref(body, "courier", where, label, couriers, "courier", "couriers")
        destination = c.name_ref(body, "destination", where, label, destinations, "destination", "destinations")
        if courier in rules:
            c.fail(where + ("courier",), f"{label} courier", courier,
                   f"this courier already has a rule on line {c.line(('courier_rules', lines[courier]))}",
                   "keep one rule per courier")
        rules[courier] = destination
        lines[courier] = index
    return rules


def _check_overrides(c, doc, special, couriers, destinations):
    result = []
    seen = {}
    for index, body in enumerate(_array_of_tables(c, doc, "overrides", 'courier = "SF" and chutes = [20]')):
        where = ("overrides", index)
        label = f"[[overrides]] #{index + 1}"
        c.table(body, where, label, ("courier", "chutes", "destinations"), required=("courier", "chutes"))
        courier = c.name_ref(body, "courier", where, label, couriers, "courier", "couriers")
        chutes = c.chute_list(body, "chutes", where, label, special)
        scope = body.get("destinations", [])
        if not isinstance(scope, list) or not all(isinstance(d, str) for d in scope):
            c.fail(where + ("destinations",), f"{label} destinations", scope, "must be a list of destination names",
                   'write destinations = ["Dongguan"], or leave it out for every parcel of the courier')
        for name in scope:
            if name not in destinations:
                c.fail(where + ("destinations",), f"{label} destinations", name,
                       "no such destination" + _suggest(name, destinations),
                       "use one of the names under [destinations]")
        for key in [(courier, d) for d in scope] or [(courier, None)]:
            if key in seen:
                c.fail(where + ("courier",), f"{label} courier", courier,
                       f"an override for this courier{'' if key[1] is None else ' and ' + key[1]} is already on line {c.line(('overrides', seen[key]))}",
                       "keep one override per courier and destination")
            seen[key] = index
        result.append(Override(courier, chutes, list(scope), index))
    return result
