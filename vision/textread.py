"""Printed routing codes and waybill numbers: find the label, flatten it, cut lines, recognise them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from vision import barcode, fusion, stage_cost
from vision.deadline import Deadline
from vision.fusion import (ROUTING_MIN_CONFIDENCE, TEXT_MIN_CONFIDENCE, TextHit, combined,
                           misread_of_each_other)
from vision.labelfind import find_labels, orientations, warp_label
from vision.textlines import (beside_bars, find_lines_and_bars, hyphen_joined, in_pieces, line_input,
                              line_pieces, numbers_side)
from vision.textmodel import runtime
from vision.routing_code import MAX_STRAY, find_routing_code
from vision.unread_ink import characters_skipped, characters_unread
from vision.waybill import MAX_WAYBILL_LEN, check_waybill

# Budget needed to start on a label (flatten, read its barcode), to go on to its lines (find
# them, read the first ones) and per further line, as measured on one core.
ATTEMPT_MIN_MS = 3.0
PROBE_MIN_MS = 5.0
COLUMNS_MIN_MS = 6.0   # zxing along the frame's columns about 2 ms, and the lines still to read
LINE_MS = 1.5
MAX_LINES_PER_ATTEMPT = 8
PROBE_LINES = 3
ROUTING_MIN_H = 36   # flat-label pixels: routing code lines measure 48-72, printed waybill numbers 16-28
MAX_TEXT_LEN = 24
# A line whose best reading alone is this likely passes every confidence floor of fusion.
ENOUGH = max(ROUTING_MIN_CONFIDENCE, TEXT_MIN_CONFIDENCE)
# In the labels' font a digit and the letter it resembles (0 and O, D, Q; 8 and B...) differ
# mostly in width, and a label flattened from a noisy outline can come out narrower than printed
# (glare on the parcel beside it taken for paper widens the outline): the model then reads an O as
# 0 without doubt. Drawn this much wider, such a line shows its letter. A routing code is taken
# only when its line, read again so widened, does not turn one of its digits into the letter the
# digit resembles. Set on seeds apart from the benchmark's (docs/perf-vision.md); None reads each
# line once.
RECHECK_WIDEN: float | None = 1.15
RECHECK_MS = 1.0
# A reading of the other printed copy from this confidence on can refuse a confident one.
CONTRADICT_MIN_CONFIDENCE = 0.5
DIGIT_LOOKALIKES = {"0": "ODQ", "1": "I", "2": "Z", "5": "S", "6": "G", "8": "B"}


class LineRead(NamedTuple):
    """One line as the model read it."""
    text: str
    confidence: float
    unread: int = 0    # characters its ink holds beyond those read (waybill numbers only)


@dataclass
class TextPass:
    hits: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    barcodes: list = field(default_factory=list)  # BarcodeHit read on a flattened label
    columns_scanned: bool = False                 # the frame's columns were scanned too


def _barcode_on_flat(flat: np.ndarray, out: TextPass):
    """Waybill barcodes of a flattened label, and whether the flat is upside down.

    A symbol zxing missed on the frame at a slant reads on the flattened label, where its bars
    stand upright: rows only, about 1.5 ms. It also tells which way up the label is, which
    saves reading lines both ways round.
    """
    hits = barcode.zxing_code128(flat, upright=True)
    out.barcodes += hits
    waybills = [h for h in hits if h.courier and h.up]
    if waybills:
        return True, waybills[0].up[1] > 0
    return False, False


def _barcode_on_columns(gray: np.ndarray, corners: np.ndarray, out: TextPass):
    """Waybill barcodes along the frame's columns (a blurred symbol may not survive the
    flattening), and whether the flat is upside down."""
    out.columns_scanned = True
    hits = barcode.zxing_code128_columns(barcode.downscaled(gray, barcode.MAX_DECODE_SIDE))
    out.barcodes += hits
    waybills = [h for h in hits if h.courier and h.up]
    if not waybills:
        return False, False
    return True, float(np.dot(corners[0] - corners[3], waybills[0].up)) < 0


def _columns_ms(gray: np.ndarray) -> float:
    """Scaling the frame down and zxing along its columns (_barcode_on_columns)."""
    side = barcode.MAX_DECODE_SIDE
    return max(COLUMNS_MIN_MS, stage_cost.downscale_ms(gray.shape, side)
               + stage_cost.zxing_ms(stage_cost.downscaled_pixels(gray.shape, side), rows_only=True))


def _pick_lines(boxes, limit: int):
    """Line blobs shaped like a routing code or a printed waybill number, likeliest first.

    Those are single rows at least 6 times wider than tall; address blocks and the courier
    block are squarer and only fill what room is left.
    """
    keep = []
    for box in boxes:
        w, h = box[2] - box[0], box[3] - box[1]
        if 14 <= h <= 90 and 2.5 <= w / h <= 20:
            keep.append(box)
    keep.sort(key=lambda b: (b[2] - b[0]) < 6 * (b[3] - b[1]))
    return keep[:limit]


def _probe_lines(boxes, bars=()):
    """The lines read first: the two printed waybill numbers and a routing code.

    The printed numbers are the lines standing right over or under the bars (`bars`, even the
    remains of a torn barcode), failing that the thinnest lines (a phone number may be thinner
    than a number the bars no longer tell). Printed in large type, the routing code is the
    thinnest of the tall lines; it is taken by height rather than left for the lines that only
    the time left pays for.
    """
    by_shape = sorted(boxes, key=lambda b: -(b[2] - b[0]) / (b[3] - b[1]))
    numbers = [b for b in by_shape if beside_bars(b, bars)][:PROBE_LINES - 1]
    probe = numbers + [b for b in by_shape if b not in numbers][:PROBE_LINES - 1 - len(numbers)]
    others = [b for b in by_shape if b not in probe]
    tall = [b for b in others if b[3] - b[1] >= ROUTING_MIN_H]
    if tall and not any(b[3] - b[1] >= ROUTING_MIN_H for b in probe):
        return probe + tall[:1]
    return probe + others[:1]


def _lines_that_fit(lines, remaining_ms: float):
    """As many of `lines` as the time left pays for; none once the deadline has passed (the time
    left is then negative)."""
    return lines[:max(0, int(remaining_ms / LINE_MS))]


def _classify(text: str, conf: float, unread: int = 0) -> TextHit | None:
    if not text or len(text) > MAX_TEXT_LEN:
        return None
    line = find_routing_code(text)
    if line is not None:
        # A code of a shape the plan does not have is a misread of the routing code line: not an
        # answer (fusion takes "routing_code" hits only), but the line has been read.
        if line.code:
            return TextHit("routing_code", line.code, conf)
        return TextHit("routing_line", text, conf, line.why)
    if _is_number(text):
        if unread:
            # A number read with a character lost may still be some courier's (13 digits read as
            # 12): its line is read, but the number is not an answer (fusion refuses it).
            return TextHit("waybill_line", text, conf,
                           f"its line holds ink of {unread} character{'s' if unread > 1 else ''} more than read")
        return TextHit("waybill", text, conf)
    return None


def _is_number(text: str) -> bool:
    return len(text) <= MAX_WAYBILL_LEN and check_waybill(text).valid


def _worth_reading_apart(box, hit) -> bool:
    """A tall line (a routing code's size) that did not read as a code to take: perhaps printed
    with spaces, which the model, trained on hyphenated codes, reads as one run of characters."""
    if box[3] - box[1] < ROUTING_MIN_H:
        return False
    return hit is None or hit.kind == "routing_line" or (
        hit.kind == "routing_code" and hit.confidence < fusion.ROUTING_MIN_CONFIDENCE)


def _apart_or_whole(whole, apart):
    """The hit a line gives, read whole and with its words joined by hyphens. Two different
    codes from the same pixels are a line in doubt: neither is taken."""
    if apart is None or apart.kind != "routing_code":
        return whole if whole is not None else apart
    if whole is None or whole.kind != "routing_code":
        return apart
    if whole.text == apart.text:
        return apart if apart.confidence >= whole.confidence else whole
    return TextHit("routing_line", apart.text, apart.confidence,
                   f"reads {whole.text} as printed and {apart.text} with its words joined")


def _up_first(candidates, up_vector):
    """Order the two orientations so that the one agreeing with the barcode's comes first."""
    if up_vector is None:
        return candidates
    def score(c):
        return -float(np.dot(c[0] - c[3], up_vector))
    return sorted(candidates, key=score)


def _half_turn(flat: np.ndarray) -> np.ndarray:
    """The flat label turned upside down (OpenCV's flip is several times faster than numpy's copy)."""
    import cv2
    return cv2.flip(flat, -1)


def _flip_box(box, shape):
    h, w = shape
    x0, y0, x1, y1 = box
    return (w - x1, h - y1, w - x0, h - y0)


def _upright_score(results) -> float:
    # Upside-down text reads as nothing (the model was trained so): only real text scores.
    return sum(read.confidence for read in results if len(read.text) >= 4)


def _agreeing(hits, notes):
    """Hits without printed numbers that contradict each other.

    A label prints its waybill number twice; two readings one or two characters apart are the
    same number, and one of them is misread (a doubled digit merged, a smaller stub line). Neither
    is taken: a no read is better than a wrong chute. The other copy speaks against a confident
    reading even when it is read with less confidence itself (from CONTRADICT_MIN_CONFIDENCE): in
    a print the model was not trained on, the wrong copy was often the confident one (held-out
    tier, docs/perf-vision.md).
    """
    confident = {h.text for h in hits if h.kind == "waybill" and h.confidence >= TEXT_MIN_CONFIDENCE}
    # A copy whose own line shows a character unread (a waybill_line) is known to be short of one:
    # it does not speak against a copy read whole (on the damaged tier it cost 5 right reads in
    # 1,500 when it did).
    others = {h.text for h in hits if h.kind == "waybill" and h.confidence >= CONTRADICT_MIN_CONFIDENCE}
    clash = {t for a in confident for b in others if misread_of_each_other(a, b) for t in (a, b)}
    if not clash:
        return hits
    notes.append(f"printed numbers {' and '.join(sorted(clash))} disagree")
    return [h for h in hits if h.text not in clash]


def digits_turned_letters(code: str, other: str) -> bool:
    """Whether `other` is `code` with one or more of its digits read as the letter it resembles."""
    return (other != code and len(other) == len(code)
            and all(a == b or b in DIGIT_LOOKALIKES.get(a, "") for a, b in zip(code, other)))


def _never(text: str) -> bool:
    return False


class Joined(NamedTuple):
    """A line read with its words (boxes) joined: by a drawn hyphen where `dashes` says so."""
    words: tuple
    dashes: tuple


def _cut(flat, where, widen: float = 1.0) -> np.ndarray:
    """Model input of a found line: `where` is its box, or a Joined line."""
    if isinstance(where, Joined):
        return hyphen_joined(flat, where.words, where.dashes, widen=widen)
    return line_input(flat, where, widen=widen)


def _as_code(text: str) -> str:
    """A reading compared with a code: the code it gives, else its segments joined by '-'."""
    line = find_routing_code(text)
    if line is not None and line.code:
        return line.code
    return "-".join("".join(c if c.isalnum() else " " for c in text).split())


def _recheck_routing(model, flat, found, deadline: Deadline, notes) -> list:
    """The hits of `found` ((box or word boxes, hit) pairs), each routing code fusion would take
    read again widened (RECHECK_WIDEN); one whose digits then read as letters stays a routing
    line, read but not an answer. So does one the time left cannot recheck: a code in doubt is
    not a guess."""
    floor = fusion.ROUTING_MIN_CONFIDENCE
    todo = [i for i, (_, h) in enumerate(found) if h.kind == "routing_code" and h.confidence >= floor]
    hits = [h for _, h in found]
    if not todo or RECHECK_WIDEN is None:
        return hits
    if not deadline.fits(RECHECK_MS * len(todo)):
        wider = [None] * len(todo)
        notes.append("time budget spent before the routing code was read again")
    else:
        cuts = [_cut(flat, found[i][0], RECHECK_WIDEN) for i in todo]
        wider = [_as_code(text) for text, _ in model.read(np.stack(cuts), full_probability=_never)]
    for i, other in zip(todo, wider):
        code = hits[i].text
        if other is None:
            hits[i] = TextHit("routing_line", code, hits[i].confidence, "no time left to read it again wider")
        elif digits_turned_letters(code, other):
            hits[i] = TextHit("routing_line", code, hits[i].confidence,
                              f"reads {other} drawn {RECHECK_WIDEN:g} times as wide (a digit or a letter?)")
    return hits


def _found(model, flat, boxes, results, deadline: Deadline) -> list:
    """(box, hit) for each line read as something wanted. A tall line that did not read as a
    routing code to take and stands in words apart (`738 V21 004`) is read again with its words
    joined by hyphens; where it was read (a Joined line) then stands for its box."""
    found = [[box, _classify(*read)] for box, read in zip(boxes, results)]
    apart = []
    for entry in found:
        if model is not None and _worth_reading_apart(*entry):
            words = line_pieces(flat, entry[0])
            if len(words) > 1:
                apart.append((entry, tuple(words)))
    if apart and deadline.fits(LINE_MS * len(apart)):
        lines = _read_joined(model, flat, [words for _, words in apart], deadline)
        for (entry, _), (joined, where) in zip(apart, lines):
            hit = _apart_or_whole(entry[1], joined)
            if hit is not entry[1]:
                entry[:] = [where, hit]
    return [(b, h) for b, h in found if h is not None]


def _read_joined(model, flat, lines, deadline: Deadline) -> list:
    """(hit, where it was read) of each line (its words' boxes), read with its words joined by
    hyphens.

    Most such lines read so at once. One that does not give a code to take is read again when
    the time left pays for it: its words alone first, in one batch, for a Chinese word before the
    code (`冀A石家庄`) reads as nothing or a stray letter, which the hyphen drawn after it would
    join to the code, and its doubt lowers the code's; such words are left out. A word that reads
    with a hyphen at its end (`300- 03-03 26`), or one after it at the start, gets no second one.
    """
    first = [Joined(words, (True,) * (len(words) - 1)) for words in lines]
    reads = _read_lines(model, [_cut(flat, at) for at in first], deadline)
    out = [(_classify(*read), at) for at, read in zip(first, reads)]
    again = [i for i, (hit, _) in enumerate(out) if not _taken(hit)]
    if not again or not deadline.fits(LINE_MS * sum(len(lines[i]) + 1 for i in again)):
        return out
    alone = iter(_read_lines(model, [line_input(flat, w) for i in again for w in lines[i]], deadline))
    where = {}
    for i in again:
        texts = [next(alone)[0] for _ in lines[i]]
        stray = _leading_stray(texts)
        texts, words = texts[stray:], lines[i][stray:]
        dashes = tuple(not (a.endswith("-") or b.startswith("-")) for a, b in zip(texts, texts[1:]))
        if words and (stray or not all(dashes)):
            where[i] = Joined(words, dashes) if len(words) > 1 else words[0]
    if where:
        for i, read in zip(where, _read_lines(model, [_cut(flat, at) for at in where.values()], deadline)):
            out[i] = _better_of(out[i], (_classify(*read), where[i]))
    return out


def _taken(hit) -> bool:
    return hit is not None and hit.kind == "routing_code" and hit.confidence >= fusion.ROUTING_MIN_CONFIDENCE


def _better_of(a, b):
    """Of two (hit, where) reads of one line, the one that gives a code, the likelier when both
    give the same; two different codes are a line in doubt (as in _apart_or_whole)."""
    hit = _apart_or_whole(a[0], b[0])
    return a if hit is a[0] else (hit, b[1])


def _leading_stray(texts) -> int:
    """How many words at the start of a line read alone as what a Chinese word reads as: nothing,
    or at most MAX_STRAY letters (a digit is a segment's, and kept)."""
    count = 0
    for text in texts:
        kept = [c for c in text if c.isalnum()]
        if len(kept) > MAX_STRAY or any(c.isdigit() for c in kept):
            break
        count += 1
    return count


def _wanted(text: str) -> bool:
    return _classify(text, 1.0) is not None


def _enough(hits, barcode_found: bool) -> bool:
    """Whether the lines read so far already answer everything text can add. Two printed
    copies of one number count together, as fusion counts them (their doubts multiply)."""
    # The routing code is printed once: once its line has read as one (of any shape), more lines
    # would not read it better. Its own floor (ROUTING_MIN_CONFIDENCE) is fusion's business.
    routing = any(h.kind in ("routing_code", "routing_line") and h.confidence >= TEXT_MIN_CONFIDENCE
                  for h in hits)
    waybill = barcode_found or any(c >= TEXT_MIN_CONFIDENCE for c in combined(hits, "waybill").values())
    return routing and waybill


def _read_lines(model, cuts, deadline: Deadline) -> list[LineRead]:
    """Each cut line read, in one batch; a waybill number with the characters its ink holds
    beyond those read (vision/unread_ink.py). A batch whose run does not fit in the budget left
    is not started: its lines read as nothing."""
    if not deadline.fits(LINE_MS * len(cuts)):
        deadline.skip("time budget spent during text reading")
        return [LineRead("", 0.0)] * len(cuts)
    columns: list = []
    with deadline.timed(LINE_MS * len(cuts)):
        reads = model.read(np.stack(cuts), full_probability=_wanted, enough=ENOUGH, columns=columns)
    return [LineRead(text, conf, _unread(cut, at, text) if _is_number(text) else 0)
            for cut, at, (text, conf) in zip(cuts, columns, reads)]


def _unread(cut, columns, text: str) -> int:
    """Characters of a number's line left unread: ink beyond its ends, or a step inside it."""
    return characters_unread(cut, columns, len(text)) or characters_skipped(columns, text)


def _read_both_ways(model, flat, flipped, boxes, deadline: Deadline):
    read = _read_lines(model, [line_input(flat, b) for b in boxes]
                       + [line_input(flipped, _flip_box(b, flat.shape)) for b in boxes], deadline)
    return read[:len(boxes)], read[len(boxes):]


def _read_either_way_up(model, flat, probe, rest, deadline: Deadline):
    """Probe lines read the right way up, with the flat (and the boxes) turned so.

    The first probe line is read both ways round: upside-down text reads as nothing, so one
    line usually tells. Only when it does not (it read as nothing either way) are the other
    probe lines read both ways too. Boxes are turned with the flat rather than found again.
    """
    flipped = _half_turn(flat)
    up, down = _read_both_ways(model, flat, flipped, probe[:1], deadline)
    others = probe[1:]
    if _upright_score(up) == _upright_score(down) and others:
        more_up, more_down = _read_both_ways(model, flat, flipped, others, deadline)
        up, down, others = up + more_up, down + more_down, []
    if _upright_score(down) > _upright_score(up):
        flat, up = flipped, down
        probe = [_flip_box(b, flat.shape) for b in probe]
        rest = [_flip_box(b, flat.shape) for b in rest]
    if others:
        up += _read_lines(model, [line_input(flat, b) for b in probe[1:]], deadline)
    return flat, probe, rest, up


def _read_way_up_told(model, flat, probe, rest, side: int, deadline: Deadline):
    """Probe lines read the way up that the printed numbers beside the barcodes tell (`side` as
    `numbers_side` gives it), read the other way round too only when none of them reads as
    anything wanted: one line fewer than reading the first both ways, and one model call.
    """
    def turned():
        return (_half_turn(flat), [_flip_box(b, flat.shape) for b in probe],
                [_flip_box(b, flat.shape) for b in rest])
    told = (flat, probe, rest) if side > 0 else turned()
    results = _read_lines(model, [line_input(told[0], b) for b in told[1]], deadline)
    if any(_wanted(read.text) for read in results):
        return (*told, results)
    other = turned() if side > 0 else (flat, probe, rest)
    other_results = _read_lines(model, [line_input(other[0], b) for b in other[1]], deadline)
    if _upright_score(other_results) > _upright_score(results):
        return (*other, other_results)
    return (*told, results)


def read_text(gray: np.ndarray, deadline: Deadline, up_vector=None, barcode_found: bool = False,
              frame_rows_only: bool = False, barcode_answers=None) -> TextPass:
    """Text hits from every label found.

    The thinnest lines (printed waybill numbers) and the routing code are read first, and the
    rest only when those did not answer. Which side is up comes from the barcode when one was
    read (on the frame or on the flattened label), otherwise from the side of the bars' remains
    that the printed numbers stand on, and failing that from reading the first line both ways
    round.
    """
    out = TextPass()
    model = runtime.load()
    if model is None:
        out.notes.append("text model unavailable")
    cost = stage_cost.find_labels_ms(gray.shape)
    if not deadline.fits(cost):
        out.notes.append("time budget spent before the label outline was looked for")
        return out
    with deadline.timed(cost):
        quads = find_labels(gray)
    if not quads:
        out.notes.append("no label outline found")
        return out
    for quad in quads:
        if not deadline.fits(ATTEMPT_MIN_MS):
            out.notes.append("time budget spent during text reading")
            return out
        corners = _up_first(orientations(quad), up_vector)[0]
        flat = warp_label(gray, corners)
        up_known, found_here = up_vector is not None, barcode_found
        found = None   # lines and bars, when found before the frame's columns are scanned
        if not barcode_found:
            found_here, upside_down = _barcode_on_flat(flat, out)
            if not found_here and frame_rows_only and not out.columns_scanned:
                # A torn barcode reads on no scan line: its columns are left for after the
                # printed numbers (read_label scans them when those did not answer).
                found = find_lines_and_bars(flat) if model is not None else None
                if (found is None or not in_pieces(found[1])) and deadline.fits(_columns_ms(gray)):
                    with deadline.timed(_columns_ms(gray)):
                        found_here, upside_down = _barcode_on_columns(gray, corners, out)
            if found_here:
                if barcode_answers is not None and barcode_answers([h.text for h in out.barcodes]):
                    return out
                up_known = True
                if upside_down:
                    flat = _half_turn(flat)
                    found = None
        if model is None:
            continue
        if not deadline.fits(PROBE_MIN_MS):
            out.notes.append("time budget spent during text reading")
            return out
        limit = 4 if found_here else MAX_LINES_PER_ATTEMPT
        lines, bars = found or find_lines_and_bars(flat)
        boxes = _pick_lines(lines, limit)
        if not boxes:
            continue
        probe = _probe_lines(boxes, bars)
        rest = [b for b in boxes if b not in probe]
        side = 0 if up_known else numbers_side(lines, bars)
        if side:
            flat, probe, rest, results = _read_way_up_told(model, flat, probe, rest, side, deadline)
        elif not up_known:
            flat, probe, rest, results = _read_either_way_up(model, flat, probe, rest, deadline)
        else:
            results = _read_lines(model, [line_input(flat, b) for b in probe], deadline)
        found_lines = _found(model, flat, probe, results, deadline)
        if rest and not _enough([h for _, h in found_lines], found_here):
            fit = _lines_that_fit(rest, deadline.remaining_ms() / deadline.pace)
            if len(fit) < len(rest):
                out.notes.append("time budget spent during text reading")
                rest = fit
            if rest:
                found_lines += _found(model, flat, rest,
                                      _read_lines(model, [line_input(flat, b) for b in rest], deadline), deadline)
        hits = _recheck_routing(model, flat, found_lines, deadline, out.notes)
        out.hits.extend(_agreeing(hits, out.notes))
    return out
