"""Printed routing codes and waybill numbers: find the label, flatten it, cut lines, recognise them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.deadline import Deadline
from vision.fusion import ROUTING_MIN_CONFIDENCE, TEXT_MIN_CONFIDENCE, TextHit
from vision.labelfind import find_labels, orientations, warp_label
from vision.textlines import line_input, find_lines
from vision.textmodel import runtime
from vision.waybill import MAX_WAYBILL_LEN, check_waybill, is_routing_code

# Budget needed to start on a label (flatten, find lines, first batch) and on the remaining lines,
# as measured on one core.
ATTEMPT_MIN_MS = 3.0
LINES_MIN_MS = 1.5
MAX_LINES_PER_ATTEMPT = 8
PROBE_LINES = 3
MAX_TEXT_LEN = 24


@dataclass
class TextPass:
    hits: list = field(default_factory=list)
    flats: list = field(default_factory=list)   # flattened labels, for a second barcode try
    notes: list = field(default_factory=list)


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


def _classify(text: str, conf: float) -> TextHit | None:
    if not text or len(text) > MAX_TEXT_LEN:
        return None
    if is_routing_code(text):
        return TextHit("routing_code", text, conf)
    if len(text) <= MAX_WAYBILL_LEN and check_waybill(text).valid:
        return TextHit("waybill", text, conf)
    return None


def _up_first(candidates, up_vector):
    """Order the two orientations so that the one agreeing with the barcode's comes first."""
    if up_vector is None:
        return candidates
    def score(c):
        return -float(np.dot(c[0] - c[3], up_vector))
    return sorted(candidates, key=score)


def _flip_box(box, shape):
    h, w = shape
    x0, y0, x1, y1 = box
    return (w - x1, h - y1, w - x0, h - y0)


def _iou(a, b) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _upright_score(results) -> float:
    # Upside-down text reads as nothing (the model was trained so): only real text scores.
    return sum(conf for text, conf in results if len(text) >= 4)


def _wanted(text: str) -> bool:
    return _classify(text, 1.0) is not None


def _enough(hits, barcode_found: bool) -> bool:
    """Whether the lines read so far already answer everything text can add."""
    routing = any(h.kind == "routing_code" and h.confidence >= ROUTING_MIN_CONFIDENCE for h in hits)
    waybill = barcode_found or any(h.kind == "waybill" and h.confidence >= TEXT_MIN_CONFIDENCE for h in hits)
    return routing and waybill


def read_text(gray: np.ndarray, deadline: Deadline, up_vector=None, barcode_found: bool = False) -> TextPass:
    """Text hits from every label found.

    The longest thin lines (printed waybill numbers, the routing code) are read first, and the
    rest only when those did not answer. Which side is up comes from the barcode when one was
    read, otherwise from reading those first lines both ways round in one batch.
    """
    out = TextPass()
    model = runtime.load()
    if model is None:
        out.notes.append("text model unavailable")
    quads = find_labels(gray)
    if not quads:
        out.notes.append("no label outline found")
        return out
    limit = 4 if barcode_found else MAX_LINES_PER_ATTEMPT
    for quad in quads:
        if deadline.remaining_ms() < ATTEMPT_MIN_MS:
            out.notes.append("time budget spent during text reading")
            return out
        flat = warp_label(gray, _up_first(orientations(quad), up_vector)[0])
        out.flats.append(flat)
        if model is None:
            continue
        boxes = _pick_lines(find_lines(flat), limit)
        if not boxes:
            continue
        probe = sorted(boxes, key=lambda b: -(b[2] - b[0]) / (b[3] - b[1]))[:PROBE_LINES]
        rest = [b for b in boxes if b not in probe]
        if up_vector is None:
            flipped = np.ascontiguousarray(flat[::-1, ::-1])
            batch = [line_input(flat, b) for b in probe] + [
                line_input(flipped, _flip_box(b, flat.shape)) for b in probe]
            read = model.read(np.stack(batch), full_probability=_wanted)
            results, down = read[:len(probe)], read[len(probe):]
            if _upright_score(down) > _upright_score(results):
                # Blob finding is not exactly symmetric (thresholds run in blocks from the
                # top-left), so the lines are found again the right way up.
                flat, results = flipped, down
                done = [_flip_box(b, flat.shape) for b in probe]
                rest = [b for b in _pick_lines(find_lines(flat), limit)
                        if not any(_iou(b, d) > 0.5 for d in done)][:limit - len(probe)]
        else:
            results = model.read(np.stack([line_input(flat, b) for b in probe]), full_probability=_wanted)
        hits = [h for h in (_classify(t, c) for t, c in results) if h is not None]
        if rest and not _enough(hits, barcode_found):
            if deadline.remaining_ms() < LINES_MIN_MS:
                out.notes.append("time budget spent during text reading")
            else:
                more = model.read(np.stack([line_input(flat, b) for b in rest]), full_probability=_wanted)
                hits += [h for h in (_classify(t, c) for t, c in more) if h is not None]
        out.hits.extend(hits)
    return out
