"""Printed routing codes and waybill numbers: find the label, flatten it, cut lines, recognise them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vision.deadline import Deadline
from vision.fusion import TextHit
from vision.labelfind import find_labels, orientations, warp_label
from vision.textlines import line_input, find_lines
from vision.textmodel import runtime
from vision.waybill import MAX_WAYBILL_LEN, check_waybill, is_routing_code

# Cost of one orientation attempt (flatten, find lines, recognise a batch), measured on one core.
ATTEMPT_MIN_MS = 3.0
MAX_LINES_PER_ATTEMPT = 8
MAX_TEXT_LEN = 24


@dataclass
class TextPass:
    hits: list = field(default_factory=list)
    flats: list = field(default_factory=list)   # flattened labels, for a second barcode try
    notes: list = field(default_factory=list)


def _pick_lines(boxes, limit: int):
    """Line blobs shaped like a routing code or a printed waybill number."""
    keep = []
    for box in boxes:
        w, h = box[2] - box[0], box[3] - box[1]
        if 14 <= h <= 90 and 2.5 <= w / h <= 20:
            keep.append(box)
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


def read_text(gray: np.ndarray, deadline: Deadline, up_vector=None, barcode_found: bool = False) -> TextPass:
    out = TextPass()
    model = runtime.load()
    quads = find_labels(gray)
    if not quads:
        out.notes.append("no label outline found")
        return out
    limit = 4 if barcode_found else MAX_LINES_PER_ATTEMPT
    for quad in quads:
        for n_try, corners in enumerate(_up_first(orientations(quad), up_vector)):
            if deadline.remaining_ms() < ATTEMPT_MIN_MS:
                out.notes.append("time budget spent during text reading")
                return out
            flat = warp_label(gray, corners)
            if n_try == 0:
                out.flats.append(flat)
            if model is None:
                break
            boxes = _pick_lines(find_lines(flat), limit)
            if not boxes:
                continue
            batch = np.stack([line_input(flat, b) for b in boxes])
            found = [h for h in (_classify(t, c) for t, c in model.read(batch)) if h is not None]
            out.hits.extend(found)
            if any(h.confidence >= 0.5 for h in found):
                break   # this orientation is the right one; the flipped one would only add noise
    if model is None:
        out.notes.append("text model unavailable")
    return out
