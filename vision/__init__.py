"""Label recognition: Code 128 waybill barcodes, printed routing codes and waybill numbers.

Heavy libraries (OpenCV, zxing-cpp, onnxruntime) load on the first read, not on import.
"""
from vision.result import LabelRead

__all__ = ["LabelRead", "read_label"]


def read_label(image, budget_ms: float = 40.0) -> LabelRead:
    """Read one image (array, encoded bytes or a file path); never raises on bad input."""
    from vision.pipeline import read_label as _read_label
    return _read_label(image, budget_ms=budget_ms)
