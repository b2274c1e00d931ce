"""Courier detection from the waybill number, by formats a technician writes in the plan.

A format is a template matched against the whole canonical waybill:
    #        one digit            @        one letter A-Z
    [XK]     one of the listed characters (ranges such as [0-4] allowed)
    {13}     the element before, repeated 13 times
    other    that character itself (0-9, A-Z, '-')
e.g. "SF#{13}", "JD[XK]#{12}", "JDV@#{11}". A courier with `s10 = true` also takes UPU S10
international numbers (two letters, eight digits, a mod-11 check digit, two letters) whose
check digit is right. The first courier in file order with a matching format wins.

Every plan starts from the default rule set in default_couriers.toml (real couriers' number
shapes, each with where it comes from): a plan's courier of the same name replaces the default
one, a new name adds a courier, and the plan's couriers come before the defaults. Its [shared]
shapes are waybills that name no courier (12-digit numbers several couriers printed).

Each template compiles to one 64-bit class mask per position (classes: digits 0..9,
letters 10..35, '-' 36), which is what the compiled core matches; the pure twin uses a
regular expression built from the same template.
"""
import itertools
import pathlib
import re

MAX_FORMAT_LEN = 32
N_CLASSES = 37
DIGITS_MASK = (1 << 10) - 1
LETTERS_MASK = ((1 << 26) - 1) << 10
S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
S10_MASKS = (LETTERS_MASK,) * 2 + (DIGITS_MASK,) * 9 + (LETTERS_MASK,) * 2


class FormatError(ValueError):
    """A template cannot be read; the message says which part."""


def char_class(byte):
    if 48 <= byte <= 57:
        return byte - 48
    if 65 <= byte <= 90:
        return byte - 55
    if byte == 45:
        return 36
    return -1


def _literal_mask(ch):
    c = char_class(ord(ch)) if len(ch) == 1 and ord(ch) < 128 else -1
    if c < 0:
        raise FormatError(f"character {ch!r} cannot appear in a waybill format; use 0-9, A-Z, '-', #, @ or [..]")
    return 1 << c


def _set_mask(body):
    mask = 0
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = _literal_mask(body[i]), _literal_mask(body[i + 2])
            if hi < lo:
                raise FormatError(f"range [{body[i]}-{body[i + 2]}] runs backwards")
            mask |= (hi << 1) - lo
            i += 3
        else:
            mask |= _literal_mask(body[i])
            i += 1
    if not mask:
        raise FormatError("empty character set []")
    return mask


def compile_format(template):
    """Tuple of per-position class masks for a template; raises FormatError."""
    text = template.upper()
    masks = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "#":
            masks.append(DIGITS_MASK)
            i += 1
        elif ch == "@":
            masks.append(LETTERS_MASK)
            i += 1
        elif ch == "[":
            end = text.find("]", i)
            if end < 0:
                raise FormatError("'[' without its closing ']'")
            masks.append(_set_mask(text[i + 1:end]))
            i = end + 1
        elif ch == "{":
            end = text.find("}", i)
            count = text[i + 1:end] if end > 0 else ""
            if not masks or not count.isdigit() or not 1 <= int(count) <= MAX_FORMAT_LEN:
                raise FormatError("'{n}' must follow an element and hold a number 1..32")
            masks.extend([masks[-1]] * (int(count) - 1))
            i = end + 1
        else:
            masks.append(_literal_mask(ch))
            i += 1
    if not masks:
        raise FormatError("the format is empty")
    if len(masks) > MAX_FORMAT_LEN:
        raise FormatError(f"the format is {len(masks)} characters long; at most {MAX_FORMAT_LEN}")
    return tuple(masks)


_CLASS_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"     # the character of each class


def _char_set(mask):
    """Regular expression for one position: ranges for runs (0-9, A-Z), so that it compiles fast."""
    runs, at = [], 0
    while at < N_CLASSES:
        if not mask >> at & 1:
            at += 1
            continue
        end = at
        while end + 1 < N_CLASSES and mask >> (end + 1) & 1 and end + 1 not in (10, 36):
            end += 1
        runs.append(re.escape(_CLASS_CHARS[at]) if end == at else
                    f"{re.escape(_CLASS_CHARS[at])}-{re.escape(_CLASS_CHARS[end])}")
        at = end + 1
    return runs[0] if mask & (mask - 1) == 0 else "[" + "".join(runs) + "]"


def masks_to_regex(masks):
    parts = []
    for mask, same in itertools.groupby(masks):
        count = len(list(same))
        parts.append(_char_set(mask) + (f"{{{count}}}" if count > 1 else ""))
    return re.compile("".join(parts).encode("ascii"))


def s10_check_ok(canon):
    """UPU S10 check digit of a 13-character number already matching S10_MASKS."""
    total = sum(w * (canon[2 + k] - 48) for k, w in enumerate(S10_WEIGHTS))
    check = 11 - total % 11
    if check == 10:
        check = 0
    elif check == 11:
        check = 5
    return canon[10] - 48 == check


class CourierTable:
    """Ordered (courier index, masks, needs S10 check) entries; courier index is 1-based."""

    def __init__(self, names, entries):
        self.names = list(names)
        self.entries = list(entries)
        self._regexes = []
        while self.compile_next():
            pass

    def compile_next(self):
        """Compile the next format's regular expression; False once all are.

        A cold re.compile takes about 0.15 ms: a table unpickled beside a running line
        compiles its formats one at a time between two parcels (plan_pieces.py).
        """
        at = len(self._regexes)
        if at == len(self.entries):
            return False
        idx, masks, s10 = self.entries[at]
        self._regexes.append((idx, masks_to_regex(masks), s10))
        return True

    def __getstate__(self):
        return {"names": self.names, "entries": self.entries}

    def __setstate__(self, state):
        self.names = state["names"]
        self.entries = state["entries"]
        self._regexes = []

    def detect(self, canon):
        """Courier index of canonical waybill bytes, 0 when no format matches."""
        if len(self._regexes) < len(self.entries):
            while self.compile_next():
                pass
        for idx, regex, s10 in self._regexes:
            if regex.fullmatch(canon) and (not s10 or s10_check_ok(canon)):
                return idx
        return 0


# -- the default rule set -------------------------------------------------------------------------
DEFAULTS_PATH = pathlib.Path(__file__).with_name("default_couriers.toml")
SHARED = "shared"       # the section of shapes that are waybills but name no courier


class DefaultCourier:
    """One courier of the default rule set: name, title, formats (templates as written), masks,
    s10, sources (where its shapes come from)."""

    __slots__ = ("name", "title", "formats", "masks", "s10", "sources")

    def __init__(self, name, title, formats, masks, s10, sources):
        self.name, self.title, self.formats, self.masks = name, title, tuple(formats), tuple(masks)
        self.s10, self.sources = s10, tuple(sources)

    def __repr__(self):
        return f"<DefaultCourier {self.name}: {', '.join(self.formats)}{' +S10' if self.s10 else ''}>"


_defaults = None


def default_rules():
    """(couriers, shared): the default couriers in file order, and the [shared] shapes as a
    DefaultCourier (waybills that name no courier). Read once; FormatError names what is wrong."""
    global _defaults
    if _defaults is None:
        _defaults = _read_defaults(DEFAULTS_PATH)
    return _defaults


def _read_defaults(path):
    import tomllib
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FormatError(f"{path}: the default courier rules cannot be read ({exc}); "
                          f"reinstall the package or restore the file") from None
    couriers = [_default_courier(path, name, body) for name, body in doc.get("couriers", {}).items()]
    shared = _default_courier(path, SHARED, doc.get(SHARED, {"formats": []}))
    return couriers, shared


def _default_courier(path, name, body):
    formats = body.get("formats", [])
    try:
        masks = [compile_format(template) for template in formats]
    except FormatError as exc:
        raise FormatError(f"{path}: [couriers.{name}] formats: {exc}") from None
    sources = body.get("sources", [])
    if formats and not sources:
        raise FormatError(f"{path}: [couriers.{name}] has formats but no sources; "
                          f"say where each shape comes from")
    return DefaultCourier(name, body.get("title", name), formats, masks, bool(body.get("s10", False)), sources)


def default_table():
    """The default couriers as a CourierTable (what a reader without a plan tells couriers by)."""
    couriers, _ = default_rules()
    return table_of([(c.name, c.masks, c.s10) for c in couriers])


def shared_table():
    """A CourierTable whose only 'courier' is the shared shapes: detect() > 0 means a waybill
    that names no courier."""
    _, shared = default_rules()
    return table_of([(SHARED, shared.masks, False)])


def table_of(couriers):
    """CourierTable of [(name, masks list, s10)] in order; the first matching courier wins."""
    entries = []
    for index, (_, formats, s10) in enumerate(couriers, start=1):
        entries.extend((index, masks, False) for masks in formats)
        if s10:
            entries.append((index, S10_MASKS, True))
    return CourierTable([name for name, _, _ in couriers], entries)
