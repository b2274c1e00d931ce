"""Training lines for the text model, cut from synthetic labels by the run-time line finder.

Each label is drawn, damaged or not, photographed through the same camera effects as the
benchmark tiers, flattened again from its known outline (plus a few pixels of outline error, as the
label finder makes), and cut by `find_lines`/`line_input`. A cut line is labelled with the printed
text it covers, reduced to the model's characters: Chinese address lines teach the model to print
nothing useful for them. Labels turned upside down teach it to print nothing at all.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from vision.labelfind import CANON_H, CANON_W, warp_label
from vision.synth.degrade import damage_barcodes, photometric
from vision.synth.label import LABEL_H, LABEL_W, draw_label
from vision.synth.truth import random_routing_code, random_truth
from vision.textlines import find_lines, line_input
from vision.textmodel.charset import keep_known

TIER_MIX = (("clean", 0.2), ("rotated", 0.25), ("noisy", 0.25), ("damaged", 0.3))
# Letters a worn or noisy print turns into a digit (O/0, S/5, I/1, B/8, Z/2, G/6, D/0, Q/0): a
# routing code misread this way still looks like a routing code, so only the model can tell them.
LOOKALIKES = "OSIBZGDQ"
KIND_ROUTING, KIND_WAYBILL, KIND_OTHER = 0, 1, 2


def _photograph(label: np.ndarray, rng, tier: str) -> tuple[np.ndarray, np.ndarray]:
    """The label on cardboard as the camera sees it, and its outline in that picture."""
    import cv2
    scale = rng.uniform(0.8, 1.1)
    w, h = LABEL_W * scale, LABEL_H * scale
    margin = 60.0
    quad = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32) + margin
    if tier == "rotated":
        quad += rng.uniform(-0.07, 0.07, size=(4, 2)).astype(np.float32) * (w + h) / 2
    size = (int(w + 2 * margin), int(h + 2 * margin))
    frame = np.full((size[1], size[0]), rng.uniform(110, 175), np.float32)
    frame += rng.standard_normal((size[1], size[0]), dtype=np.float32) * 4
    src = np.array([[0, 0], [LABEL_W, 0], [LABEL_W, LABEL_H], [0, LABEL_H]], np.float32)
    m = cv2.getPerspectiveTransform(src, quad)
    warped = cv2.warpPerspective(label.astype(np.float32), m, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones_like(label, np.float32), m, size, flags=cv2.INTER_LINEAR)
    frame = frame * (1 - mask) + warped * mask
    return photometric(frame, rng, tier), quad


def _target(box, lines) -> str | None:
    """Printed text inside `box`, or None when the box cuts a printed line in two."""
    x0, y0, x1, y1 = box
    parts = []
    for (lx0, ly0, lx1, ly1), text in lines:
        iw = min(x1, lx1) - max(x0, lx0)
        ih = min(y1, ly1) - max(y0, ly0)
        if iw <= 0 or ih <= 0:
            continue
        covered = iw * ih / max(1, (lx1 - lx0) * (ly1 - ly0))
        if covered >= 0.6:
            parts.append((lx0, ly0, text))
        elif covered > 0.15 and keep_known(text):
            return None
    if any(a[1] + 8 < b[1] for a in parts for b in parts):
        return ""   # several printed rows in one blob: not a line the reader should report
    parts.sort()
    return keep_known(" ".join(text for _, _, text in parts))


def label_lines(rng, lookalikes: float = 0.0):
    """(input 32x256 uint8, target text, kind) for every line found on one synthetic label.

    `lookalikes`: share of labels whose routing code takes its letter from LOOKALIKES.
    """
    truth = random_truth(rng)
    if lookalikes and rng.random() < lookalikes:
        truth = dataclasses.replace(truth, routing_code=random_routing_code(rng, truth.courier, LOOKALIKES))
    r = rng.random()
    tier = next(name for name, cum in zip([t for t, _ in TIER_MIX], np.cumsum([p for _, p in TIER_MIX]))
                if r < cum)
    art = draw_label(truth, rng)
    if tier == "damaged":
        damage_barcodes(art.image, art.boxes["barcode"], rng)
    photo, quad = _photograph(art.image, rng, "clean" if tier == "damaged" else tier)
    corners = quad + rng.normal(0, 2.0, size=(4, 2)).astype(np.float32)
    flipped = rng.random() < 0.12
    if flipped:
        corners = np.roll(corners, 2, axis=0)
    flat = warp_label(photo, corners)
    assert flat.shape == (CANON_H, CANON_W)
    out = []
    for box in find_lines(flat):
        target = "" if flipped else _target(box, art.lines)
        if target is None or (target == "" and rng.random() < 0.75):
            continue
        kind = KIND_OTHER
        if not flipped and target == truth.routing_code:
            kind = KIND_ROUTING
        elif not flipped and target == truth.waybill:
            kind = KIND_WAYBILL
        pic = (line_input(flat, box) * 255).astype(np.uint8)
        out.append((pic, target, kind))
    return out


def make_set(seed: int, n_labels: int, progress=None, lookalikes: float = 0.0):
    rng = np.random.default_rng(seed)
    pics, targets, kinds = [], [], []
    for i in range(n_labels):
        for pic, target, kind in label_lines(rng, lookalikes):
            pics.append(pic)
            targets.append(target)
            kinds.append(kind)
        if progress and (i + 1) % 500 == 0:
            progress(i + 1, len(pics))
    return np.stack(pics), targets, np.array(kinds, np.int8)
