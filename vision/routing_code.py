"""Printed routing codes (三段码 / 大头笔) as the reader accepts them.

Couriers print the code with hyphens or spaces between its segments (`571-J25-03`,
`738 V21 004`, `905B K017-00 41`), often after Chinese words (`冀A石家庄 203-00 17`) that the
text model cannot read: it prints nothing for them, or a stray character or two. The code is
found as a run of segments, each standing between separators (a hyphen or a space), whose
lengths make one of the line's shapes; what stands around it is skipped. The code is given in
the routing core's canonical form (segments joined by '-'), so `738 V21 004` printed and
`738-V21-004` in the plan are the same code.

A line's codes come in a few fixed shapes (the lengths of their segments); the sort plan tells
which, so that a code read with a character lost or two merged into one is not taken. Segments
must stand apart on the line: a run of characters is never cut into segments by guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Without the plan's shapes: three segments and EMS's fourth, of the lengths couriers print.
ROUTING_CODE = re.compile(r"[0-9A-Z]{2,4}-[0-9A-Z]{2,4}-[0-9A-Z]{1,3}(?:-[0-9A-Z]{1,3})?")
MAX_SEGMENTS = 4
MAX_STRAY = 1   # characters before the code that a Chinese word may have been read as (冀A: A)
# The text model prints '*', '.', ':' and '&' too; on a routing line they are what it made of a
# Chinese character or a smudge, and they separate like a space.
_SEPARATORS = re.compile(r"[^0-9A-Z]+")
_SEGMENT = re.compile(r"[0-9A-Z]+")


# The shapes (lengths of the segments) of the routing codes the line's sort plan knows. A code
# read with a character lost or two merged into one still fits ROUTING_CODE, but rarely the
# plan's shapes: a line's codes come in a few fixed shapes (571-J25-03 is 3-3-2).
_routing_shapes = None


@dataclass(frozen=True)
class RoutingLine:
    """What a routing line read gives: the code (canonical) when one in a shape taken stands on
    it, else why not; `span` is where on the text the code, or the likeliest near-miss, stands."""
    code: str | None
    span: tuple[int, int]
    why: str = ""


def routing_shape(code: str) -> tuple[int, ...]:
    """The lengths of the segments of `code`: (3, 3, 2) for 571-J25-03 (and for 571 J25 03)."""
    return tuple(len(segment) for segment in _SEPARATORS.split(code.upper()) if segment)


def use_routing_shapes(shapes) -> None:
    """Accept only routing codes of these shapes from now on (None: any shape ROUTING_CODE fits)."""
    global _routing_shapes
    _routing_shapes = frozenset(shapes) if shapes else None


def _shape_taken(segments) -> bool:
    if _routing_shapes is not None:
        return tuple(len(s) for s in segments) in _routing_shapes
    return ROUTING_CODE.fullmatch("-".join(segments)) is not None


def _segments(text: str):
    """(segment, start, end) of each run of letters and digits on the line."""
    return [(m.group(), m.start(), m.end()) for m in _SEGMENT.finditer(text.upper())]


def _alike(segments) -> bool:
    return ROUTING_CODE.fullmatch("-".join(segments)) is not None


def _runs(segments, taken):
    """(first, last) index of every run of 3..MAX_SEGMENTS consecutive segments `taken` accepts."""
    runs = []
    for first in range(len(segments)):
        for last in range(first + 2, min(first + MAX_SEGMENTS, len(segments))):
            if taken([s for s, _, _ in segments[first:last + 1]]):
                runs.append((first, last))
    return runs


def _hyphen_between(text: str, before, after) -> bool:
    return "-" in text[before[2]:after[1]]


def _code_run(text: str, segments):
    """(first, last) of the code on the line, or None.

    The code ends the line: a segment after it is a character more than the code (312-07-33-0
    is EMS's 312-07-33-08 with a character lost, not the code 312-07-33). What stands before it
    (a Chinese word, or what the model made of it) is skipped when a space parts it from the code;
    joined to it by a hyphen, it is a segment of the code, and the code is longer than the
    shape. The model prints nothing for most Chinese characters and a stray letter or two for
    some: more than MAX_STRAY character before the code is another text, not a Chinese word
    (a pinyin address 'NO 123 AB 12' holds no code). Of two runs that fit, the longer is the code.
    """
    last = len(segments) - 1
    for first in range(max(0, last - MAX_SEGMENTS + 1), last - 1):
        if first > 0 and _hyphen_between(text, segments[first - 1], segments[first]):
            continue
        if sum(len(s) for s, _, _ in segments[:first]) > MAX_STRAY:
            continue
        if _shape_taken([s for s, _, _ in segments[first:]]):
            return first, last
    return None


def _widest(runs):
    """The runs that no other run holds: 312 Q03 01 05 is one code, not also 312-Q03-01."""
    return [r for r in runs if not any(o != r and o[0] <= r[0] and r[1] <= o[1] for o in runs)]


def find_routing_code(text: str) -> RoutingLine | None:
    """The routing code on a printed line as read, or None when the line does not look like one.

    A line that holds something written like a routing code but not a code to take (a shape the
    plan lacks, a segment more, more text before it) gives a RoutingLine without code, and why.
    """
    if not isinstance(text, str) or not text:
        return None
    segments = _segments(text)
    run = _code_run(text, segments)
    if run is not None:
        first, last = run
        code = "-".join(s for s, _, _ in segments[first:])
        span = (segments[first][1], segments[last][2])
        return RoutingLine(code, span)
    alike = _widest(_runs(segments, _alike))
    if alike:
        first, last = alike[0]
        return RoutingLine(None, (segments[first][1], segments[last][2]),
                           "not in a shape of the sort plan's routing codes")
    return None


_WRITTEN = re.compile(r"[0-9A-Z]+(?:[ -]+[0-9A-Z]+)*")


def _written_segments(text) -> list | None:
    """The segments of `text` when it is all segments apart by hyphens or spaces ('571.J25.03'
    and '571J2503' are not written like a code)."""
    if not isinstance(text, str) or not _WRITTEN.fullmatch(text.strip()):
        return None
    return text.split() if "-" not in text else [s for s in re.split(r"[ -]+", text.strip()) if s]


def looks_like_routing_code(text) -> bool:
    """Written like a routing code (segments apart, by hyphens or spaces), whatever its shape."""
    segments = _written_segments(text)
    return segments is not None and ROUTING_CODE.fullmatch("-".join(segments)) is not None


def is_routing_code(text) -> bool:
    """The whole of `text` is one routing code in one of the shapes given (any, when none was)."""
    segments = _written_segments(text)
    return segments is not None and len(segments) >= 3 and _shape_taken(segments)


def canonical(code: str) -> str:
    """`code` with its segments joined by '-', as the routing core keys it."""
    return "-".join(s for s in _SEPARATORS.split(code.upper()) if s)
