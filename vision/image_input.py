"""Turn whatever a camera or a caller hands over into one 8-bit grayscale image, or say why not.

Image files come from outside (a camera's upload, a technician's copy) and are read defensively:
only regular files, opened without blocking (a named pipe would block open() until a writer
comes, a device never ends), at most MAX_FILE_BYTES, and measured from their header before a
decoder allocates anything (vision.image_header).
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat

import numpy as np

from vision import stage_cost
from vision.deadline import Deadline, OverBudget
from vision.image_header import MAX_PIXELS, BadImage, ImageHeader, check_image
from vision.image_whole import NO_JPEG_END, completeness

# A camera's JPEG is 1-10 MB and an 8-bit BMP at the 50 MP limit is 50 MB: a bigger file is not a
# label image, and reading it whole (a 2 GB file named 5.jpg) would stall the reader.
MAX_FILE_BYTES = 64 * 1024 * 1024
MIN_SIDE = 16
_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def _not_a_file(mode: int) -> BadImage:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return BadImage(f"it is {kind}, not an image file the camera uploaded: remove it from the camera folder")


def open_regular(path) -> int:
    """A file descriptor of `path` for reading, if it is a regular file.

    Raises BadImage when it is anything else (checked before opening, so that no device is ever
    opened, and again on the open file, in case it was swapped in between), OSError when it cannot
    be opened (gone, no permission).
    """
    mode = os.lstat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _not_a_file(mode)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _not_a_file(stat.S_IFLNK) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _not_a_file(mode)
    return fd


def read_image_file(path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of an image file, at most `max_bytes`. Raises BadImage with the reason, for
    anything that is not a readable regular file of that size."""
    data = b""
    try:
        with os.fdopen(open_regular(path), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= max_bytes:
                data = fh.read(max_bytes + 1)       # + 1: a file still growing past the limit shows it
    except FileNotFoundError:
        raise BadImage("the file is gone (deleted or moved after it was found)") from None
    except PermissionError:
        raise BadImage("no permission to read it: let the controller's user read the camera's files "
                       "(check the upload's owner and umask)") from None
    except OSError as exc:
        raise BadImage(f"it cannot be read ({exc.strerror or exc})") from None
    size = max(size, len(data))
    if size > max_bytes:
        raise BadImage(f"the file is {size / 2**20:.0f} MB, more than the {max_bytes / 2**20:.0f} MB a label "
                       f"image can be: it is not a camera's image; remove it")
    if not data:
        raise BadImage("the file is empty (0 bytes): the camera's upload had not begun")
    return data


def decode(data: bytes, flags: int | None = None, reduce: int = 1) -> np.ndarray:
    """cv2.imdecode of an image file's bytes once its header passes check_image, in gray at
    1/`reduce` of its size (1, 2, 4 or 8: a JPEG is decoded so at a fraction of the cost) unless
    `flags` says otherwise. Raises BadImage."""
    import cv2

    header = check_image(data)
    if flags is None:
        flags = _GRAY_AT[reduce]() | cv2.IMREAD_IGNORE_ORIENTATION
    if header.kind == "JPEG" and completeness(data, header.suffix) == NO_JPEG_END:
        # cv2.imread ends a cut JPEG with an end marker, as libjpeg's file reader does, and decodes
        # what arrived (the rest gray); cv2.imdecode gives up instead. This gives imread's picture.
        data = data + b"\xff\xd9"
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:       # OpenCV's own pixel limit (image_header.limit_opencv_decoding), or no memory
        raise BadImage(f"the decoder refused it ({(exc.err or 'OpenCV error').strip()})") from None
    except MemoryError:
        raise BadImage("not enough memory to decode it") from None
    if img is None or img.size == 0:
        missing = completeness(data, header.suffix)
        raise BadImage(f"{missing}: the upload was cut short" if missing else f"its {header.kind} data is damaged")
    return img


def _gray_at(name: str):
    def flag() -> int:
        import cv2
        return getattr(cv2, name)
    return flag


_GRAY_AT = {1: _gray_at("IMREAD_GRAYSCALE"), 2: _gray_at("IMREAD_REDUCED_GRAYSCALE_2"),
            4: _gray_at("IMREAD_REDUCED_GRAYSCALE_4"), 8: _gray_at("IMREAD_REDUCED_GRAYSCALE_8")}
# A decode may take this share of the budget left; the rest is for reading what it gives.
DECODE_SHARE = 0.5


def decode_scale(header: ImageHeader, file_bytes: int, deadline: Deadline | None) -> int:
    """1, or the smallest reduction (2, 4, 8) a JPEG is decoded at so that its worst case takes
    at most DECODE_SHARE of the budget left, or failing that fits in it. Raises OverBudget when
    no decode fits."""
    if deadline is None:
        return 1
    scales = (1, 2, 4, 8) if header.kind == "JPEG" else (1,)
    costs = [stage_cost.decode_ms(header.kind, header.width, header.height, file_bytes, r, header.progressive)
             for r in scales]
    for share in (DECODE_SHARE, 1.0):
        for scale, cost in zip(scales, costs):
            if deadline.fits(cost / share):
                return scale
    raise OverBudget(f"decoding the {header.width} x {header.height} {header.kind} ({file_bytes / 2**20:.1f} MB) "
                     f"takes up to {min(costs):.0f} ms, more than the {max(0.0, deadline.remaining_ms()):.0f} ms "
                     f"of budget left: lower the camera's resolution or JPEG quality, or raise [vision] budget_ms")


def _from_array(arr: np.ndarray, deadline: Deadline | None = None) -> np.ndarray:
    if arr.size == 0:
        raise BadImage("empty image array")
    if deadline is not None and arr.ndim in (2, 3):
        cost = stage_cost.array_ms(arr)
        if cost > 0.0 and not deadline.fits(cost):
            raise OverBudget(f"turning the {arr.shape[1]} x {arr.shape[0]} {arr.dtype} image into 8-bit gray takes up "
                             f"to {cost:.0f} ms, more than the {max(0.0, deadline.remaining_ms()):.0f} ms of budget "
                             f"left: hand over 8-bit images, or raise [vision] budget_ms")
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


def _from_bytes(data: bytes, deadline: Deadline | None = None) -> np.ndarray:
    if not data:
        raise BadImage("empty image data")
    if len(data) > MAX_FILE_BYTES:
        raise BadImage(f"image data is {len(data)} bytes, over the {MAX_FILE_BYTES} byte limit")
    header = check_image(data)
    scale = decode_scale(header, len(data), deadline)
    estimate = stage_cost.decode_ms(header.kind, header.width, header.height, len(data), scale, header.progressive)
    with deadline.timed(estimate) if deadline is not None else contextlib.nullcontext():
        img = decode(data, reduce=scale)
    return _from_array(img, deadline)


def load_gray(image, deadline: Deadline | None = None) -> np.ndarray:
    """8-bit grayscale view of `image`: ndarray, encoded bytes, or a file path.

    With a `deadline`, a JPEG too large to decode whole within it is decoded at a reduced scale,
    and an image that cannot be decoded or converted in the budget left raises OverBudget
    (vision/deadline.py) before any of that work starts.
    """
    if image is None:
        raise BadImage("no image (the file was missing or could not be decoded)")
    if isinstance(image, np.ndarray):
        return _from_array(image, deadline)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(image), deadline)
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        try:
            return _from_bytes(read_image_file(path), deadline)
        except BadImage as exc:
            raise BadImage(f"{path}: {exc}") from None
    raise BadImage(f"unsupported image type {type(image).__name__}; pass an array, bytes or a path")
