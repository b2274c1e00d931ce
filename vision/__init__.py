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
    import cv2
    import numpy as np

    from vision.image_input import decode
    from vision.pipeline import read_label as _read_label
    from vision.routing_code import find_routing_code
    from vision.textmodel import runtime
    from vision.waybill import check_waybill
    status = runtime.status()
    blank = np.full((1024, 1280), 200, np.uint8)
    _read_label(blank, budget_ms=1000.0)
    # What a blank frame does not reach, and the first label would pay for inside its budget: the
    # courier rules (about 0.2 s to build), the routing-code shapes, the image decoders.
    check_waybill("0")
    find_routing_code("000-000-00")
    for ext in (".jpg", ".png"):
        decode(cv2.imencode(ext, blank[:64, :64])[1].tobytes())
    return status
