"""Printed routing codes (三段码 / 大头笔): canonical form, rule keys and the 64-bit code.

Canonical form: ASCII whitespace stripped at the ends, ASCII letters upper-cased, segments
split on '-' or spaces (runs count once) and joined by a single '-': OCR of
"571 J25 03" and a barcode "571-J25-03" are the same code.

Codes of at most 12 characters from [0-9A-Z-] get a 64-bit code (bijective base 37,
0 = none); longer or stranger codes take the slow path with the same rules.
"""
import re

MAX_ENCODED_LEN = 12
MAX_RANGE_DIGITS = 9
_SEPARATORS = re.compile(rb"[- ]+")
_SEGMENT = re.compile(r"[0-9A-Z]+")


def canonical(code):
    """Canonical bytes of a routing code (str or bytes), or None when nothing is left."""
    if code is None:
        return None
    if isinstance(code, str):
        raw = code.encode("utf-8", "surrogatepass")
    elif isinstance(code, (bytes, bytearray, memoryview)):
        raw = bytes(code)
    else:
        raise TypeError(f"a routing code must be str, bytes or None, not {type(code).__name__}")
    canon = b"-".join(s for s in _SEPARATORS.split(raw.strip().upper()) if s)
    return canon or None


def symbol_value(byte):
    if 48 <= byte <= 57:
        return byte - 47          # '0'..'9' -> 1..10
    if 65 <= byte <= 90:
        return byte - 54          # 'A'..'Z' -> 11..36
    if byte == 45:
        return 37                 # '-'
    return 0


def encode(canon):
    """64-bit code of a canonical routing code, 0 when it does not fit."""
    if canon is None or len(canon) > MAX_ENCODED_LEN:
        return 0
    value = 0
    for byte in canon:
        v = symbol_value(byte)
        if v == 0:
            return 0
        value = value * 37 + v
    return value


def split_rule_code(text):
    """Segments of a routing code written in a plan, or None when it is not well formed."""
    canon = canonical(text)
    if canon is None:
        return None
    segments = canon.decode("utf-8", "surrogatepass").split("-")
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        return None
    return segments


def range_parts(canon):
    """(parent bytes, last segment number) when the code can fall in a range rule."""
    parent, _, last = canon.rpartition(b"-")
    if last.isdigit() and len(last) <= MAX_RANGE_DIGITS:
        return parent, int(last)
    return None
