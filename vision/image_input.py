"""Turn whatever a camera or a caller hands over into one 8-bit grayscale image, or say why not."""
from __future__ import annotations

import os

import numpy as np

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_PIXELS = 50_000_000
MIN_SIDE = 16


class BadImage(ValueError):
    """The input is not a usable image; the message says what is wrong."""


def _from_array(arr: np.ndarray) -> np.ndarray:
    if arr.size == 0:
        raise BadImage("empty image array")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        # Channel order does not matter for bar/space contrast; a plain mean avoids guessing BGR vs RGB.
        arr = arr[:, :, :3].mean(axis=2) if arr.dtype != np.uint8 else _bgr_to_gray(arr)
    if arr.ndim != 2:
        raise BadImage(f"image has shape {arr.shape}; expected HxW, HxWx1, HxWx3 or HxWx4")
    h, w = arr.shape
    if min(h, w) < MIN_SIDE:
        raise BadImage(f"image is {w}x{h} px; at least {MIN_SIDE} px per side are needed")
    if h * w > MAX_PIXELS:
        raise BadImage(f"image is {w}x{h} px, over the {MAX_PIXELS // 1_000_000} MP limit")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise BadImage(f"image pixels have type {arr.dtype}; expected integers or floats")
    data = arr.astype(np.float32)
    finite = np.isfinite(data)
    if not finite.all():
        data = np.where(finite, data, 0.0)
    if np.issubdtype(arr.dtype, np.integer):
        top = float(np.iinfo(arr.dtype).max)
        data = data * (255.0 / top) if top > 255 else data
    elif data.max(initial=0.0) <= 1.0:
        data = data * 255.0
    return np.clip(data, 0, 255).astype(np.uint8)


def _bgr_to_gray(arr: np.ndarray) -> np.ndarray:
    import cv2
    code = cv2.COLOR_BGRA2GRAY if arr.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(np.ascontiguousarray(arr), code)


def _from_bytes(data: bytes) -> np.ndarray:
    import cv2
    if not data:
        raise BadImage("empty image data")
    if len(data) > MAX_FILE_BYTES:
        raise BadImage(f"image data is {len(data)} bytes, over the {MAX_FILE_BYTES} byte limit")
    buf = np.frombuffer(data, np.uint8)
    # Refuse oversized pictures before decoding them: the header is enough to know.
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:
        raise BadImage(f"image data could not be decoded ({exc.err or 'OpenCV error'})") from None
    if img is None:
        raise BadImage("not a decodable image (truncated file or unknown format)")
    return _from_array(img)


def load_gray(image) -> np.ndarray:
    """8-bit grayscale view of `image`: ndarray, encoded bytes, or a file path."""
    if image is None:
        raise BadImage("no image (the file was missing or could not be decoded)")
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(image))
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            size = os.path.getsize(path)
            if size > MAX_FILE_BYTES:
                raise BadImage(f"{path}: {size} bytes, over the {MAX_FILE_BYTES} byte limit")
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise BadImage(f"{path}: cannot read ({exc.strerror or exc})") from None
        try:
            return _from_bytes(data)
        except BadImage as exc:
            raise BadImage(f"{path}: {exc}") from None
    raise BadImage(f"unsupported image type {type(image).__name__}; pass an array, bytes or a path")
