"""Worst-case time of the reading stages that cannot be interrupted, from the size of their input.

Milliseconds of one unloaded core (the reference machine of docs/performance.md), about 1.5 times
the slowest case measured (thread CPU time, docs/perf-vision.md "Stages that cannot be stopped"):
a stage is started only when this fits in the budget left (vision/deadline.py), so an estimate
too low is an overrun and one too high a stage skipped.
"""
from __future__ import annotations

import numpy as np

MP = 1_000_000

# Decoding. A JPEG's entropy decoding runs over every block of the file whatever the scale it is
# decoded to, longer the more bits it holds; its inverse DCT scales with the pixels produced
# (12 MP: a 4 MB photo 27 ms at 1/8 scale and 47 ms whole, a 1.2 MB label 18 ms at 1/4 and
# 30 ms whole). A progressive JPEG passes over the image once per scan.
JPEG_MS_PER_MP_READ = 1.5
JPEG_MS_PER_MB = 4.0
JPEG_MS_PER_MP = 2.5
PROGRESSIVE_FACTOR = 3.0
PNG_MS_PER_MP = 11.0       # inflate and unfilter: 88 ms for 12 MP
BMP_MS_PER_MP = 3.0
TIFF_MS_PER_MP = 11.0
DECODE_FIXED_MS = 0.5

# An array handed over: a uint8 gray array is used as it is, a colour one converted (0.25 ms/MP),
# any other type scaled through float32.
COLOR_MS_PER_MP = 0.5
CONVERT_MS_PER_MP = 6.0

RESIZE_AREA_MS_PER_MP = 2.5    # INTER_AREA, per megapixel read: 20 ms for 12 MP to 1600 px
RESIZE_LINEAR_MS_PER_MP = 2.0  # INTER_LINEAR, per megapixel written
# zxing-cpp: 2-3 ms/MP on labels, 6-7.5 on busy specimen labels, 9.7 on pure noise (rows and
# columns, both polarities); along rows only about half.
ZXING_MS_PER_MP = 10.0
ZXING_ROWS_MS_PER_MP = 5.0
WARP_MS_PER_MP = 6.0           # warpPerspective, cubic, per megapixel written
LOCATE_MS = 10.0               # OpenCV's barcode locator on a 640 px image: 5-8 ms
FIND_LABELS_FIXED_MS = 1.5     # outline search on the quarter-size copy, after its resize


def decode_ms(kind: str, width: int, height: int, file_bytes: int, reduce: int = 1,
              progressive: bool = False) -> float:
    """Decoding an image file of `kind` (image_header.ImageHeader.kind) at 1/`reduce` scale."""
    mp = width * height / MP
    if kind == "JPEG":
        ms = (JPEG_MS_PER_MP_READ * mp + JPEG_MS_PER_MB * file_bytes / 2**20
              + JPEG_MS_PER_MP * mp / (reduce * reduce))
        return DECODE_FIXED_MS + ms * (PROGRESSIVE_FACTOR if progressive else 1.0)
    per_mp = {"PNG": PNG_MS_PER_MP, "BMP": BMP_MS_PER_MP}.get(kind, TIFF_MS_PER_MP)
    return DECODE_FIXED_MS + per_mp * mp


def array_ms(arr: np.ndarray) -> float:
    """Turning a caller's array into 8-bit gray (image_input._from_array)."""
    mp = arr.shape[0] * arr.shape[1] / MP
    if arr.dtype == np.uint8:
        return COLOR_MS_PER_MP * mp if arr.ndim == 3 else 0.0
    return CONVERT_MS_PER_MP * arr.size / MP


def resize_ms(src_pixels: int, dst_pixels: int, area: bool = True) -> float:
    if area:
        return RESIZE_AREA_MS_PER_MP * src_pixels / MP
    return RESIZE_LINEAR_MS_PER_MP * dst_pixels / MP


def warp_ms(dst_pixels: int) -> float:
    return WARP_MS_PER_MP * dst_pixels / MP


def zxing_ms(pixels: int, rows_only: bool = False) -> float:
    return (ZXING_ROWS_MS_PER_MP if rows_only else ZXING_MS_PER_MP) * pixels / MP


def downscaled_pixels(shape, max_side: int) -> int:
    """Pixels of barcode.downscaled(image of `shape`, max_side)."""
    h, w = shape[:2]
    factor = min(1.0, max_side / max(h, w))
    return int(w * factor) * int(h * factor)


def downscale_ms(shape, max_side: int) -> float:
    """barcode.downscaled: nothing when the image is small enough already."""
    h, w = shape[:2]
    if max(h, w) <= max_side:
        return 0.0
    return resize_ms(h * w, downscaled_pixels(shape, max_side))


def find_labels_ms(shape) -> float:
    h, w = shape[:2]
    return FIND_LABELS_FIXED_MS + resize_ms(h * w, h * w // 16)
