"""read_label: one image in, one LabelRead out, within a time budget, never an exception."""
from __future__ import annotations

import logging

import numpy as np

from vision import barcode
from vision.deadline import Deadline
from vision.fusion import fuse
from vision.image_input import BadImage, load_gray
from vision.result import LabelRead, no_read

log = logging.getLogger(__name__)

# Each fallback step is tried only when at least this much budget is left for it.
LOCATE_MIN_MS = 4.0


def _barcode_pass(gray: np.ndarray, deadline: Deadline, notes: list) -> list[str]:
    frame = barcode.downscaled(gray, barcode.MAX_DECODE_SIDE)
    texts = [h.text for h in barcode.zxing_code128(frame)]
    if frame is not gray and not any(_is_waybill(t) for t in texts) and not deadline.expired():
        texts += [h.text for h in barcode.zxing_code128(gray)]
    if any(_is_waybill(t) for t in texts):
        return texts
    if deadline.remaining_ms() < LOCATE_MIN_MS:
        notes.append("time budget spent before barcode locating")
        return texts
    # zxing misses strongly rotated or small symbols: let OpenCV find them, then straighten.
    locate_img = barcode.downscaled(gray, 1280)
    scale = gray.shape[1] / locate_img.shape[1]
    for quad in barcode.locate(locate_img):
        if deadline.expired():
            notes.append("time budget spent while decoding located barcodes")
            break
        crop = barcode.straighten(gray, barcode.grow(quad * scale, 1.15))
        texts += [h.text for h in barcode.zxing_code128(crop)]
    return texts


def _is_waybill(text: str) -> bool:
    from vision.waybill import check_waybill
    return check_waybill(text).valid


def read_label(image, budget_ms: float = 40.0) -> LabelRead:
    deadline = Deadline(budget_ms if isinstance(budget_ms, (int, float)) and budget_ms > 0 else 0.0)
    try:
        gray = load_gray(image)
    except BadImage as exc:
        return no_read(f"bad image: {exc}", deadline.elapsed_ms())
    except MemoryError:
        return no_read("bad image: too large to hold in memory", deadline.elapsed_ms())
    notes: list[str] = []
    try:
        texts = _barcode_pass(gray, deadline, notes)
    except MemoryError:
        return no_read("out of memory while reading barcodes", deadline.elapsed_ms())
    foreign = [t for t in texts if not _is_waybill(t)]
    if foreign and not notes:
        notes.append(f"{len(foreign)} Code 128 symbol(s) decoded, none in a waybill format")
    return fuse(texts, (), deadline.elapsed_ms(), notes)
