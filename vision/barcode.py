"""Waybill barcodes: zxing-cpp on the frame, then on crops that OpenCV locates and straightens.

OpenCV's BarcodeDetector finds Code 128 symbols but decodes none (it decodes EAN/UPC only), so
it is used only to locate; zxing-cpp decodes. zxing is restricted to the symbologies waybills
carry: Code 128, and Code 39 on some older forms. Reading all formats is several times slower and
invites garbage decodes from other symbologies. Code 39 has no check character of its own, so a
Code 39 reading counts only in a waybill shape: the courier rules are its check.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np

from vision.waybill import check_waybill

MAX_DECODE_SIDE = 1600
MIN_SCAN_EXTENT_PX = 3.0


CODE128 = "Code 128"
CODE39 = "Code 39"


@dataclass(frozen=True)
class BarcodeHit:
    text: str
    courier: str | None   # None: not a waybill, or a waybill of a shape several couriers share
    up: tuple[float, float] | None = None   # direction of the symbol's top edge in the image
    symbology: str = CODE128
    waybill: bool | None = None   # None: the same as `courier is not None` (hits made by hand)

    @property
    def is_waybill(self) -> bool:
        return self.courier is not None if self.waybill is None else self.waybill

    def moved(self, up) -> "BarcodeHit":
        """The same reading with its up vector in another image's coordinates."""
        return BarcodeHit(self.text, self.courier, up, self.symbology, self.waybill)


def _up_vector(position) -> tuple[float, float] | None:
    """The symbol's "up" in image coordinates, from its reading direction.

    For a linear symbol zxing's top/bottom corners are just the first and last scan rows that
    decoded, so only the left-to-right direction is trusted; up is that direction turned 90
    degrees anticlockwise on screen (y grows downwards).
    """
    try:
        tl, tr = position.top_left, position.top_right
    except AttributeError:
        return None
    dx, dy = float(tr.x - tl.x), float(tr.y - tl.y)
    if dx == 0.0 and dy == 0.0:
        return None
    return (dy, -dx)


@functools.lru_cache(maxsize=1)
def _zxing():
    import zxingcpp
    return zxingcpp


def _clean_text(raw) -> str | None:
    if not isinstance(raw, str):
        return None
    if not raw or len(raw) > 64:
        return None
    # GS (0x1d) separates GS1-128 fields and is kept; any other control character is garbage.
    if any((ord(ch) < 32 and ch != "\x1d") or ord(ch) == 127 for ch in raw):
        return None
    return raw


@functools.lru_cache(maxsize=1)
def _formats():
    zx = _zxing()
    return (zx.BarcodeFormat.Code128, zx.BarcodeFormat.Code39)


def _symbology(fmt) -> str:
    return CODE39 if fmt == _zxing().BarcodeFormat.Code39 else CODE128


def zxing_symbols(gray: np.ndarray, upright: bool = False, rows_only: bool = False) -> list[BarcodeHit]:
    """Code 128 and Code 39 symbols in `gray`. `rows_only`: scan rows only (symbols whose bars run
    more or less top to bottom), half the time; `upright`: a flattened label, rows only and only
    dark-on-light."""
    zx = _zxing()
    hits = []
    try:
        # Frames and crops come at the resolution the symbols need (crops are upscaled); zxing's
        # own downscaled passes read nothing more on the benchmark tiers and cost a quarter of its time.
        results = zx.read_barcodes(gray, formats=_formats(), text_mode=zx.TextMode.Plain,
                                   try_downscale=False, try_rotate=not (upright or rows_only),
                                   try_invert=not upright)
    except (ValueError, RuntimeError):
        return hits
    decoded = []
    for res in results:
        if not res.valid:
            continue
        text = _clean_text(res.text)
        if text is None:
            continue
        symbology = _symbology(res.format)
        check = check_waybill(text)
        if symbology == CODE39 and not check.valid:
            continue
        decoded.append((text, _scan_extent(res.position), res.position, symbology, check))
    # Code 128's check symbol lets through a few of the wrong readings a single pair of scan
    # lines can give where modules are 1-2 px wide (a receipt stub on a flattened label): a
    # reading that agrees over a few pixels of the symbol's height, or with another symbol, counts,
    # unless it lies on a symbol that reads otherwise over more of its height.
    for text, extent, position, symbology, check in decoded:
        if extent < MIN_SCAN_EXTENT_PX and sum(d[0] == text for d in decoded) == 1:
            continue
        if any(other != text and other_extent > extent and _same_symbol(position, other_position)
               for other, other_extent, other_position, _, _ in decoded):
            continue
        hits.append(BarcodeHit(text, check.courier, _up_vector(position), symbology, check.valid))
    return hits


# The name the text reader and the photo tools call it by.
zxing_code128 = zxing_symbols


def _same_symbol(a, b) -> bool:
    """Two readings of the same bars: their scan lines overlap along the symbol's length and lie
    closer across it than a tenth of that length (two symbols printed one above the other are
    kept apart by a line of text at least)."""
    try:
        corners = [np.array([[p.x, p.y] for p in (q.top_left, q.top_right, q.bottom_right, q.bottom_left)],
                            np.float64) for q in (a, b)]
    except AttributeError:
        return False
    along = corners[0][1] - corners[0][0]                  # top-left to top-right: the reading direction
    length = float(np.hypot(*along))
    if length < 1.0:
        return False
    along /= length
    across = np.array([-along[1], along[0]])
    (a_lo, a_hi), (b_lo, b_hi) = ((float((c @ along).min()), float((c @ along).max())) for c in corners)
    overlap = min(a_hi, b_hi) - max(a_lo, b_lo)
    (c_lo, c_hi), (d_lo, d_hi) = ((float((c @ across).min()), float((c @ across).max())) for c in corners)
    gap = max(c_lo, d_lo) - min(c_hi, d_hi)
    return overlap >= 0.5 * min(a_hi - a_lo, b_hi - b_lo) and gap <= 0.1 * length


def _scan_extent(position) -> float:
    """How far across its bars a linear symbol decoded: first to last agreeing scan line (px)."""
    try:
        tl, bl = position.top_left, position.bottom_left
    except AttributeError:
        return MIN_SCAN_EXTENT_PX
    return float(np.hypot(bl.x - tl.x, bl.y - tl.y))


def zxing_code128_columns(gray: np.ndarray) -> list[BarcodeHit]:
    """zxing along the columns of `gray` only: the other half of a full scan after a rows-only one.

    The frame is transposed and scanned along rows; a transposed symbol is mirrored, which a
    linear reader decodes all the same. Its up vector is mapped back to `gray`'s coordinates.
    """
    import cv2
    # OpenCV transposes in cache-sized blocks: 0.2 ms for a 1280x1024 frame, numpy's copy 1.1 ms.
    hits = zxing_symbols(cv2.transpose(gray), rows_only=True)
    return [h.moved(h.up and (-h.up[1], -h.up[0])) for h in hits]


def downscaled(gray: np.ndarray, max_side: int, fast: bool = False) -> np.ndarray:
    """`gray` at most `max_side` on a side, by area averaging (every source pixel read), or with
    `fast` by bilinear sampling (a cost by the pixels written; thin bars may alias)."""
    import cv2
    h, w = gray.shape
    factor = max_side / max(h, w)
    if factor >= 1.0:
        return gray
    return cv2.resize(gray, (int(w * factor), int(h * factor)),
                      interpolation=cv2.INTER_LINEAR if fast else cv2.INTER_AREA)


_detector_local = threading.local()


def _detector():
    det = getattr(_detector_local, "det", None)
    if det is None:
        import cv2
        det = _detector_local.det = cv2.barcode.BarcodeDetector()
    return det


def locate(gray: np.ndarray) -> list[np.ndarray]:
    """Corner quads (4x2 float32) of barcode-like regions found by OpenCV."""
    import cv2
    try:
        ok, points = _detector().detect(gray)
    except cv2.error:
        return []
    if not ok or points is None:
        return []
    return [np.asarray(p, np.float32).reshape(4, 2) for p in np.asarray(points).reshape(-1, 4, 2)]


def _straightened(quad: np.ndarray, target_module_px: float):
    """The corners of `quad` from its first long side on, and the output's width, height and pad."""
    q = quad.astype(np.float32)
    edges = [np.linalg.norm(q[(i + 1) % 4] - q[i]) for i in range(4)]
    # The long side of a 1D barcode's box runs across the bars.
    start = int(np.argmax([edges[0] + edges[2], edges[1] + edges[3]]))
    ordered = np.roll(q, -start, axis=0)
    length = max(edges[start], edges[(start + 2) % 4])
    height = max(edges[(start + 1) % 4], edges[(start + 3) % 4])
    scale = float(np.clip(target_module_px * 160.0 / max(length, 1.0), 1.0, 3.0))
    out_w, out_h = int(length * scale), int(max(height * scale, 24))
    return ordered, out_w, out_h, int(out_h * 0.2) + 12


def straightened_pixels(quad: np.ndarray, target_module_px: float = 3.0) -> int:
    """How many pixels straighten(gray, quad) writes: what its warp and a zxing scan of it cost."""
    _, out_w, out_h, pad = _straightened(quad, target_module_px)
    return (out_w + 2 * pad) * (out_h + 2 * pad)


def straighten(gray: np.ndarray, quad: np.ndarray, target_module_px: float = 3.0) -> np.ndarray:
    """Crop `quad`, rotate it so bars are vertical, add a quiet zone and upscale."""
    import cv2
    ordered, out_w, out_h, pad = _straightened(quad, target_module_px)
    dst = np.array([[pad, pad], [pad + out_w, pad], [pad + out_w, pad + out_h], [pad, pad + out_h]],
                   np.float32)
    m = cv2.getPerspectiveTransform(ordered, dst)
    return cv2.warpPerspective(gray, m, (out_w + 2 * pad, out_h + 2 * pad), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)


def grow(quad: np.ndarray, factor: float) -> np.ndarray:
    center = quad.mean(axis=0)
    return (quad - center) * factor + center
