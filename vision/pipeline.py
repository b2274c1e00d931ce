"""read_label: one image in, one LabelRead out, within a time budget, never an exception.

Order of work, cheapest evidence first, each step only while budget is left:
1. zxing-cpp on the frame (Code 128 and Code 39; along rows only when text reading follows);
2. the label outline is found and flattened; if no waybill barcode was read yet, zxing reads the
   flattened label (a slanted symbol stands upright there, and tells which way up the label is),
   then the frame along its columns; the text model reads the routing code and printed waybill
   numbers (orientation taken from the barcode when one was read);
3. if no waybill barcode and no confident printed number yet: zxing on crops OpenCV locates,
   straightened and upscaled.

Every stage that cannot be interrupted (a decode, a resize, a zxing scan, the label locator, a
text-model run) is started only when its worst case, estimated from its input's size
(vision/stage_cost.py), fits in the budget left; a stage that does not fit is skipped and named
in the read's notes (the no read's reason), so that a read returns within its budget.

A confident symbol of no waybill shape is not a waybill (order numbers, product codes), but when
no waybill is read at all it is reported, with its text, as "unknown_format": in the no read's
reason and in the read's `unknown_format`, so that a technician can add the courier's rule.
"""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from vision import barcode, stage_cost
from vision.deadline import Deadline, OverBudget
from vision.fusion import TEXT_MIN_CONFIDENCE, fuse
from vision.image_input import BadImage, load_gray
from vision.result import UNKNOWN_FORMAT, LabelRead, no_read
from vision.textread import read_text
from vision.waybill import check_waybill

log = logging.getLogger(__name__)

# A fallback step is started only when at least this much budget is left for it (ms, one core).
LOCATE_MIN_MS = 9.0   # OpenCV's locator 6-8 ms, then zxing on what it found
LOCATE_SIDE = 640   # OpenCV finds a 450 px symbol as well at half size, in half the time


def _is_waybill(text: str) -> bool:
    return check_waybill(text).valid


def frame_for_decoding(gray: np.ndarray, deadline: Deadline, then_ms: float = 0.0):
    """`gray` at most MAX_DECODE_SIDE on a side: by area averaging when its worst case and
    `then_ms` (the scan of what it gives) fit, else by bilinear sampling, which costs by the pixels
    written (a 12 MP photo: 3 ms instead of 21); None when not even that fits."""
    side = barcode.MAX_DECODE_SIDE
    cost = stage_cost.downscale_ms(gray.shape, side)
    if cost == 0.0:
        return gray
    if deadline.fits(cost + then_ms):
        with deadline.timed(cost):
            return barcode.downscaled(gray, side)
    cost = stage_cost.resize_ms(gray.size, stage_cost.downscaled_pixels(gray.shape, side), area=False)
    if deadline.fits(cost + then_ms):
        with deadline.timed(cost):
            return barcode.downscaled(gray, side, fast=True)
    return None


def _first_pass(gray: np.ndarray, deadline: Deadline, notes: list, rows_only: bool = False) -> list:
    scan = stage_cost.zxing_ms(stage_cost.downscaled_pixels(gray.shape, barcode.MAX_DECODE_SIDE), rows_only)
    frame = frame_for_decoding(gray, deadline, scan)
    if frame is None:
        notes.append("time budget too short to scale the image down for the barcode pass")
        return []
    cost = stage_cost.zxing_ms(frame.size, rows_only)
    if not deadline.fits(cost):
        notes.append(f"time budget too short for the barcode pass (up to {cost:.0f} ms on a "
                     f"{frame.shape[1]} x {frame.shape[0]} image)")
        return []
    with deadline.timed(cost):
        hits = barcode.zxing_symbols(frame, rows_only=rows_only)
    if frame is not gray:
        scale = gray.shape[1] / frame.shape[1]
        hits = [h.moved(h.up and (h.up[0] * scale, h.up[1] * scale)) for h in hits]
        cost = stage_cost.zxing_ms(gray.size, rows_only)
        if not any(h.is_waybill for h in hits) and deadline.fits(cost):
            with deadline.timed(cost):
                hits += barcode.zxing_symbols(gray, rows_only=rows_only)
    return hits


def _located_pass(gray: np.ndarray, deadline: Deadline, notes: list, printed_waybill: bool) -> list:
    found: list = []
    # A confident printed number already answers; the retries cost more than the text did.
    if printed_waybill:
        return found
    shrink = stage_cost.downscale_ms(gray.shape, LOCATE_SIDE)
    if deadline.remaining_ms() < LOCATE_MIN_MS or not deadline.fits(shrink + stage_cost.LOCATE_MS):
        notes.append("time budget spent before barcode locating")
        return found
    with deadline.timed(shrink + stage_cost.LOCATE_MS):
        locate_img = barcode.downscaled(gray, LOCATE_SIDE)
        quads = barcode.locate(locate_img)
    scale = gray.shape[1] / locate_img.shape[1]
    for quad in quads:
        grown = barcode.grow(quad * scale, 1.15)
        # straighten() writes at most a 3x upscale of the symbol's box; zxing reads what it wrote.
        pixels = barcode.straightened_pixels(grown)
        cost = stage_cost.warp_ms(pixels) + stage_cost.zxing_ms(pixels)
        if not deadline.fits(cost):
            notes.append("time budget spent while decoding located barcodes")
            break
        with deadline.timed(cost):
            found += barcode.zxing_symbols(barcode.straighten(gray, grown))
    return found


def unknown_formats(symbols) -> list:
    """The decoded symbols of no waybill shape, each text once, in the order read."""
    seen, out = set(), []
    for hit in symbols:
        if hit.text not in seen and not _is_waybill(hit.text):
            seen.add(hit.text)
            out.append(hit)
    return out


def _reported(read: LabelRead, symbols) -> LabelRead:
    """`read` with the symbols of no waybill shape named, when it has no waybill (a no read's
    reason names them already: see read_gray's notes)."""
    unknown = unknown_formats(symbols)
    if read.waybills or not unknown:
        return read
    sources = dict(read.sources)
    sources[UNKNOWN_FORMAT] = ", ".join(f"{h.symbology} {h.text}" for h in unknown)
    return replace(read, unknown_format=tuple(h.text for h in unknown), sources=sources)


def _unknown_note(unknown) -> str:
    return (f"{UNKNOWN_FORMAT}: {', '.join(f'{h.symbology} {h.text}' for h in unknown)} "
            f"(decoded, none in a waybill format: add the courier's format to the sort plan)")


def read_gray(gray: np.ndarray, deadline: Deadline, use_text: bool = True, text_needed=None) -> LabelRead:
    """`use_text=False` is the barcode-only reader (zxing, then OpenCV locate), for comparison.

    `text_needed(read)`: called with what the barcodes alone give as soon as a waybill barcode
    is read; when it returns False, that is the answer and no text is read.
    """
    notes: list[str] = []
    # With text reading, a symbol standing across the frame is read on the flattened label,
    # which text reading makes anyway: the frame is scanned along rows only, in half the time.
    # Not when the text is read only where the barcode does not answer (pre-advice routes most
    # parcels): there the whole frame at once is cheaper than rows then the flattened label
    # (clean labels, one core: 3.7 vs 5.3 ms median, 5.1 vs 9.0 ms p99).
    rows_only = use_text and text_needed is None
    hits = _first_pass(gray, deadline, notes, rows_only=rows_only)
    symbols = list(hits)
    texts = [h.text for h in hits]
    waybill_hits = [h for h in hits if h.is_waybill]
    up = waybill_hits[0].up if waybill_hits else None
    text_hits = []
    printed = False               # a confident printed waybill number was read

    def barcode_answers(found) -> bool:
        return text_needed is not None and not text_needed(fuse(texts + found, [], deadline.elapsed_ms(), notes))

    if deadline.expired():
        notes.append("time budget spent after the barcode pass")
    elif use_text and waybill_hits and barcode_answers([]):
        pass
    elif use_text:
        text = read_text(gray, deadline, up_vector=up, barcode_found=bool(waybill_hits), frame_rows_only=rows_only,
                         barcode_answers=barcode_answers)
        text_hits = text.hits
        notes += text.notes
        symbols += text.barcodes
        texts += [h.text for h in text.barcodes]
        waybill_hits += [h for h in text.barcodes if h.is_waybill]
        # A confident printed number already answers: the retries below cost more than the text did.
        printed = any(h.kind == "waybill" and h.confidence >= TEXT_MIN_CONFIDENCE for h in text_hits)
        if not waybill_hits and not printed and rows_only and not text.columns_scanned and not deadline.expired():
            # The frame's columns, not scanned yet (no label outline, or budget kept for text).
            more = columns_pass(gray, deadline)
            symbols += more
            texts += [h.text for h in more]
            waybill_hits += [h for h in more if h.is_waybill]
    if not waybill_hits:
        located = _located_pass(gray, deadline, notes, printed)
        symbols += located
        texts += [h.text for h in located]
    notes += [note for note in deadline.skipped if note not in notes]
    unknown = unknown_formats(symbols)
    if unknown and not any(_is_waybill(t) for t in texts):
        notes.insert(0, _unknown_note(unknown))
    return _reported(fuse(texts, text_hits, deadline.elapsed_ms(), notes), symbols)


def columns_pass(gray: np.ndarray, deadline: Deadline) -> list:
    """zxing along the columns of the frame (scaled down as for the first pass), when it fits."""
    side = barcode.MAX_DECODE_SIDE
    cost = stage_cost.downscale_ms(gray.shape, side) + stage_cost.zxing_ms(
        stage_cost.downscaled_pixels(gray.shape, side), rows_only=True)
    if not deadline.fits(cost):
        return []
    with deadline.timed(cost):
        return barcode.zxing_code128_columns(barcode.downscaled(gray, side))


def read_label(image, budget_ms: float = 40.0, use_text: bool = True, text_needed=None) -> LabelRead:
    ok_budget = isinstance(budget_ms, (int, float)) and not isinstance(budget_ms, bool) and budget_ms > 0
    deadline = Deadline(float(budget_ms) if ok_budget else 0.0)
    try:
        gray = load_gray(image, deadline)
    except BadImage as exc:
        return no_read(f"bad image: {exc}", deadline.elapsed_ms())
    except OverBudget as exc:
        return no_read(f"time budget too short: {exc}", deadline.elapsed_ms())
    except MemoryError:
        return no_read("bad image: too large to hold in memory", deadline.elapsed_ms())
    try:
        return read_gray(gray, deadline, use_text, text_needed)
    except MemoryError:
        return no_read("out of memory while reading", deadline.elapsed_ms())


def read_code128(image, budget_ms: float = 1000.0) -> list[str]:
    """Every distinct Code 128 text in `image`, waybill or not, and Code 39 texts in a waybill
    shape (for photos and diagnostics)."""
    deadline = Deadline(budget_ms)
    try:
        gray = load_gray(image)
    except (BadImage, MemoryError):
        return []
    texts = [h.text for h in _first_pass(gray, deadline, [])]
    for side in (LOCATE_SIDE, 1280, 2048):
        if deadline.expired():
            break
        small = barcode.downscaled(gray, side)
        scale = gray.shape[1] / small.shape[1]
        for quad in barcode.locate(small):
            if deadline.expired():
                break
            crop = barcode.straighten(gray, barcode.grow(quad * scale, 1.15))
            texts += [h.text for h in barcode.zxing_symbols(crop)]
        if small is gray:
            break
    return sorted(set(texts))
