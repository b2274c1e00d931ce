"""Label recognition: Code 128 waybill barcodes, printed routing codes and waybill numbers.

Heavy libraries (OpenCV, zxing-cpp, onnxruntime) load on the first read, not on import.
"""
from vision.result import LabelRead

__all__ = ["LabelRead", "read_label", "warm_up"]


def read_label(image, budget_ms: float = 40.0, text_needed=None) -> LabelRead:
    """Read one image (array, encoded bytes or a file path); never raises on bad input.

    `text_needed(read)`, when given, is asked as soon as a waybill barcode is read: False makes
    that read the answer without reading the printed text (a faster read when the barcode alone
    routes the parcel).
    """
    from vision.pipeline import read_label as _read_label
    return _read_label(image, budget_ms=budget_ms, text_needed=text_needed)


def warm_up() -> tuple[bool, str]:
    """Load the libraries and the text model and read one blank frame, so the first parcel does
    not pay for it. Returns the text model's (usable, message) for the start-up log."""
    import numpy as np

    from vision.pipeline import read_label as _read_label
    from vision.textmodel import runtime
    status = runtime.status()
    _read_label(np.full((1024, 1280), 200, np.uint8), budget_ms=1000.0)
    return status
