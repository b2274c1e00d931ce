"""Printed routing codes (三段码 / 大头笔): canonical form, rule keys and the 64-bit code.

Canonical form: ASCII whitespace stripped at the ends, ASCII letters upper-cased, segments
split on '-' or spaces (runs count once) and joined by a single '-': OCR of
"571 J25 03" and a barcode "571-J25-03" are the same code.

Labels print Chinese words on the routing line too (`冀A石家庄 203-00 17`, `冀-辛集 Q07-00 35`).
The readers cannot see them, so a word holding any non-ASCII character is set aside and the
code is the letters-and-digits segments left: both of those lines are the codes `203-00-17` and
`Q07-00-35`, in the plan as on the line. Full-width hyphens and spaces separate too. A line of
Chinese words only keeps its words (it routes by no rule a plan can write).

Codes of at most 12 characters from [0-9A-Z-] get a 64-bit code (bijective base 37,
0 = none); longer or stranger codes take the slow path with the same rules.
"""
import re

MAX_ENCODED_LEN = 12
MAX_RANGE_DIGITS = 9
_SEPARATORS = re.compile(rb"[- ]+")
# As printed: ASCII and full-width hyphens, dashes, the minus sign, any whitespace (U+3000 too).
_PRINTED_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\uff0d]+")
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
    if not raw.isascii():
        raw = _without_words(raw)
    canon = b"-".join(s for s in _SEPARATORS.split(raw.strip().upper()) if s)
    return canon or None


def _without_words(raw):
    """`raw` with its Chinese words set aside, when any segment of letters or digits is left."""
    text = raw.decode("utf-8", "surrogatepass")
    parts = [p for p in _PRINTED_SEPARATORS.split(text) if p]
    kept = [p for p in parts if p.isascii()]
    if not kept:
        return raw
    return " ".join(kept).encode("ascii")


def printed_words(text):
    """The words of a printed routing line that hold characters other than ASCII (Chinese place
    names, province abbreviations): set aside by canonical(), kept here to tell what was."""
    return [p for p in _PRINTED_SEPARATORS.split(text) if p and not p.isascii()]


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
    """Segments of a routing code written in a plan, or None when it is not well formed.

    A rule may name the code as the label prints it: spaces or hyphens between segments, Chinese
    words before or between them (`冀A石家庄 203-00 17` is the code 203-00-17). A word whose
    digits are joined to Chinese characters (`东关03`) is refused (why_not_a_rule_code tells):
    setting it aside would drop digits that tell routes apart, and the readers cannot see the
    characters that would keep them.
    """
    if why_not_a_rule_code(text) is not None:
        return None
    return canonical(text).decode("ascii").split("-")


def why_not_a_rule_code(text):
    """What is wrong with `text` as a routing code in a plan, or None when it is one."""
    if not isinstance(text, str):
        return "must be a text"
    glued = [w for w in printed_words(text) if any(ch.isascii() and ch.isdigit() for ch in w)]
    if glued:
        return (f"the digits of {glued[0]} are joined to characters the label readers cannot see; "
                "write the code's letters and digits apart from the Chinese words")
    canon = canonical(text)
    if canon is None:
        return "has no segments"
    segments = canon.decode("utf-8", "surrogatepass").split("-")
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        return "must be letters and digits in segments joined by '-' or spaces"
    return None


def range_parts(canon):
    """(parent bytes, last segment number) when the code can fall in a range rule."""
    parent, _, last = canon.rpartition(b"-")
    if last.isdigit() and len(last) <= MAX_RANGE_DIGITS:
        return parent, int(last)
    return None
