"""Code 128 bars for synthetic labels, drawn from zxing-cpp's encoder."""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=4096)
def code128_modules(text: str) -> np.ndarray:
    """One row of modules without quiet zones: True where a bar is."""
    import zxingcpp
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.Code128)
    row = np.asarray(zxingcpp.write_barcode_to_image(symbol, scale=1, add_quiet_zones=False))[0]
    return row < 128


def code128_image(text: str, module_px: int, height_px: int, ink: int = 0, paper: int = 255) -> np.ndarray:
    bars = np.repeat(code128_modules(text), module_px)
    row = np.where(bars, ink, paper).astype(np.uint8)
    return np.repeat(row[None, :], height_px, axis=0)
