"""Combine barcode and printed-text evidence into one answer, refusing to guess.

Rules: a barcode decode carries its own checksum and is trusted once it matches a courier format.
A printed number read by the text model counts only above a confidence floor (two printed lines
reading the same number combine) and when it too is a valid waybill, and never when a line of it
shows ink of a character more than was read (a digit lost can leave another courier's shape: 13
digits read as 12). Where both exist they must agree: a printed number one or two characters away
from a decoded symbol, of a waybill shape or not, is a misread of the same label, so the parcel
becomes a no read rather than a guess. A confident printed number far from every barcode is a
second label: multi read.
"""
from __future__ import annotations

from dataclasses import dataclass

from vision.result import LabelRead
from vision.routing_code import is_routing_code
from vision.waybill import check_waybill

TEXT_MIN_CONFIDENCE = 0.90
# A routing code is printed once (a waybill number twice, and mostly under a barcode that checks
# it), and the model still reads an O as 0 in noise, now and then without much doubt: on the
# tuning seed (4242, 12,000 parcels, codes in the labels' shapes) 9 codes were wrong at 0.90,
# 1 at 0.97 and 0.98, none at 0.99, for 5.3 % of the right codes given up (docs/perf-vision.md).
ROUTING_MIN_CONFIDENCE = 0.99


@dataclass(frozen=True)
class TextHit:
    # "waybill", "routing_code"; "routing_line" or "waybill_line": a routing code or a waybill
    # number read, but not an answer
    kind: str
    text: str
    confidence: float
    why: str = ""      # for a routing_line or waybill_line: why it is not an answer


def misread_of_each_other(a: str, b: str) -> bool:
    """Two different waybill numbers within two edits are one number, one of them misread: a
    label carries one waybill, and no courier hands out numbers that close."""
    return a != b and edit_distance(a, b) <= 2


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def combined(text_hits, kind: str) -> dict:
    """Confidence per distinct text; separate printed lines that read the same add up.

    A label prints its waybill number twice (main part and receipt stub). Two lines misread into
    the same wrong valid number would need two independent errors, so the chance that both are
    wrong is taken as the product of each one's chance of being wrong.
    """
    doubt: dict = {}
    for hit in text_hits:
        if hit.kind == kind:
            doubt[hit.text] = doubt.get(hit.text, 1.0) * (1.0 - hit.confidence)
    return {text: 1.0 - d for text, d in doubt.items()}


def why_no_routing_code(text_hits, floor: float) -> str | None:
    """What a technician checking a camera is told when a routing code was read but not taken."""
    lines = [h for h in text_hits if h.kind == "routing_line"]
    if lines:
        best = max(lines, key=lambda h: h.confidence)
        return f"{best.text} not taken: {best.why}"
    low = [h for h in text_hits if h.kind == "routing_code" and h.confidence < floor]
    if low:
        best = max(low, key=lambda h: h.confidence)
        return f"{best.text} not taken: confidence {best.confidence:.3f}, under the {floor:g} a routing code needs"
    return None


def fuse(barcode_texts, text_hits, elapsed_ms: float, notes=()) -> LabelRead:
    """`barcode_texts`: every decoded symbol's text; `text_hits`: TextHit from the text model."""
    notes = list(notes)
    barcodes = sorted({t for t in barcode_texts if check_waybill(t).valid})
    # A line of a number that shows a character unread speaks against every reading of it.
    doubted = {h.text: h.why for h in text_hits if h.kind == "waybill_line"}
    printed = {w: c for w, c in combined(text_hits, "waybill").items()
               if c >= TEXT_MIN_CONFIDENCE and check_waybill(w).valid and w not in doubted}
    for text, why in sorted(doubted.items()):
        if text not in barcodes:
            notes.append(f"printed number {text} not taken: {why}")
    routing = {r: c for r, c in combined(text_hits, "routing_code").items()
               if c >= ROUTING_MIN_CONFIDENCE and is_routing_code(r)}

    decoded = sorted(set(barcode_texts))
    for text in printed:
        if text in barcodes:
            continue
        # A symbol of no waybill shape counts too: the printed number read off by a digit or two
        # from what the bars hold is the same number misread, whichever of the two fits a shape.
        near = [b for b in decoded if misread_of_each_other(text, b)]
        if near:
            return LabelRead((), None, None, {}, 0.0, elapsed_ms,
                             f"barcode {near[0]} and printed number {text} disagree")

    waybills = tuple(sorted(set(barcodes) | set(printed)))
    sources: dict = {}
    confidence = 1.0
    by_waybill = {}
    for w in waybills:
        in_b, in_t = w in barcodes, w in printed
        by_waybill[w] = "barcode+text" if in_b and in_t else ("barcode" if in_b else "text")
        if not in_b:
            confidence = min(confidence, printed[w])
    if waybills:
        kinds = set(by_waybill.values())
        sources["waybill"] = kinds.pop() if len(kinds) == 1 else "mixed"
        if len(waybills) > 1:
            sources["by_waybill"] = by_waybill
    routing_code, routing_note = None, None
    if len(routing) == 1:
        routing_code, conf = next(iter(routing.items()))
        sources["routing_code"] = "text"
        confidence = min(confidence, conf)
    elif routing:
        routing_note = f"several routing codes printed ({', '.join(sorted(routing))})"
    else:
        routing_note = why_no_routing_code(text_hits, ROUTING_MIN_CONFIDENCE)
    courier = None
    if len(waybills) == 1:
        courier = check_waybill(waybills[0]).courier

    if not waybills and routing_code is None:
        reason = "; ".join(notes) if notes else "no barcode and no printed number or routing code found"
        if len(routing) > 1:
            reason = routing_note or reason          # it names the codes that were printed
        return LabelRead((), None, None, {}, 0.0, elapsed_ms, reason, routing_note=routing_note)
    return LabelRead(waybills, routing_code, courier, sources, round(confidence, 4), elapsed_ms, None,
                     round(routing[routing_code], 4) if routing_code else 0.0, routing_note)
