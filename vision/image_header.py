"""What an image file claims to hold, read from its header before anything is decoded.

A decoder allocates the pixels a header declares before it reads any of them: a 333-byte JPEG
whose frame header says 30000 x 30000 made OpenCV allocate and fill 900 MB (1.8 GB at the peak)
in each reader process that decoded it. The header gives the size in its first bytes, so a file
is measured here and refused before a decoder sees it.

Only the formats line cameras send are accepted, recognised by their first bytes as OpenCV
recognises them (not by the file name): JPEG, PNG, BMP and TIFF. Anything else (a PGM, a WebP, a
text file) is refused rather than handed to one of OpenCV's other decoders.
"""
from __future__ import annotations

import os
import struct
import sys
from dataclasses import dataclass

# Scan-point cameras send 1.3 to 25 MP (a 12 MP top reader covers a 1 m belt); 50 MP is twice the
# largest, and decodes to 50 MB of gray. OpenCV's own default limit, 1 GP, is 1 GB per reader.
MAX_PIXELS = 50_000_000
# Encoders write about a dozen scans in a progressive JPEG. Each scan is a pass over the whole
# image: 1,000 empty scans in a 104 kB file of 24 MP took 2.2 s to decode. (A baseline JPEG's
# decoder stops once the image is whole: scans after that cost nothing.)
MAX_JPEG_SCANS = 100
# OpenCV's TIFF decoder holds one whole strip or tile in the file's own pixel format: 4 bytes a
# pixel of the largest image (8-bit RGBA in one strip) is allowed; 16-bit RGBA in one strip is not.
MAX_TIFF_STRIP_BYTES = 4 * MAX_PIXELS
OPENCV_LIMIT_VAR = "OPENCV_IO_MAX_IMAGE_PIXELS"

FORMATS = "JPEG, PNG, BMP or TIFF"
JPEG_SIGNATURE = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# Start-of-frame markers, which carry the size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
JPEG_NO_LENGTH = frozenset({0x00, 0x01, 0xD8, *range(0xD0, 0xD8)})    # markers without a segment


class BadImage(ValueError):
    """The input is not a usable image; the message says what is wrong."""


@dataclass(frozen=True)
class ImageHeader:
    kind: str                 # "JPEG", "PNG", "BMP" or "TIFF"
    width: int
    height: int
    suffix: str               # the file name ending of the format, for vision.camera_folder.completeness
    progressive: bool = False     # a JPEG decoded in several passes (scans) over the image


def read_header(data: bytes) -> ImageHeader:
    """The format and size `data` declares. Raises BadImage when it is none of the line's formats
    or ends before its size."""
    if data.startswith(JPEG_SIGNATURE):
        return _jpeg(data)
    if data.startswith(PNG_SIGNATURE):
        return _png(data)
    if data.startswith(b"BM"):
        return _bmp(data)
    if data.startswith(TIFF_SIGNATURES):
        return _tiff(data)
    if not data:
        raise BadImage("the file is empty (0 bytes): the camera's upload had not begun")
    raise BadImage(f"not a {FORMATS} image (it begins with {bytes(data[:8])!r}): check the camera's "
                   f"image format")


def check_image(data: bytes) -> ImageHeader:
    """read_header(), and refuse an image whose decoding would take far more memory or time than
    any camera's image does. Raises BadImage with the reason."""
    header = read_header(data)
    w, h = header.width, header.height
    if w <= 0 or h <= 0:
        raise BadImage(f"image claims {w} x {h} pixels: the file is damaged")
    if w * h > MAX_PIXELS:
        raise BadImage(f"image claims {w} x {h} pixels, more than the {MAX_PIXELS // 1_000_000} MP a line "
                       f"camera sends: check the camera's resolution/ROI setting")
    if header.progressive:
        scans = data.count(b"\xff\xda")     # inside compressed data 0xFF is always followed by 0 or RSTn
        if scans > MAX_JPEG_SCANS:
            raise BadImage(f"JPEG has {scans} scans, more than the {MAX_JPEG_SCANS} any encoder writes: "
                           f"a damaged file, not a camera's image")
    if header.kind == "TIFF":
        _check_tiff_strips(data, header)
    return header


def limit_opencv_decoding() -> bool:
    """Set OpenCV's own pixel limit (behind check_image) for this process and the processes it
    starts; True when it is in force here.

    OpenCV reads the variable once, when cv2 is imported: later it only reaches child processes.
    Above the limit, cv2.imread and cv2.imdecode raise cv2.error instead of allocating. A value a
    site has set is left alone.
    """
    os.environ.setdefault(OPENCV_LIMIT_VAR, str(MAX_PIXELS))
    return "cv2" not in sys.modules


# -- JPEG ---------------------------------------------------------------------------------------
def _jpeg(data: bytes) -> ImageHeader:
    cut = BadImage("JPEG ends before its frame header (SOF): the upload was cut short")
    pos, n = 2, len(data)
    while True:
        # Like libjpeg: skip to the next 0xFF, then past fill bytes (0xFF) to the marker.
        pos = data.find(b"\xff", pos)
        while 0 <= pos < n and data[pos] == 0xFF:
            pos += 1
        if pos < 0 or pos >= n:
            raise cut
        marker = data[pos]
        pos += 1
        if marker in JPEG_SOF:
            if pos + 7 > n:
                raise cut
            height, width = struct.unpack_from(">HH", data, pos + 3)
            if height == 0:
                raise BadImage("JPEG leaves its height to a DNL marker, which the decoder does not support")
            return ImageHeader("JPEG", width, height, ".jpg", marker in JPEG_PROGRESSIVE)
        if marker in (0xDA, 0xD9):
            raise BadImage("JPEG has no frame header (SOF) before its image data: the file is damaged")
        if marker in JPEG_NO_LENGTH:
            continue
        if pos + 2 > n:
            raise cut
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2:
            raise BadImage(f"JPEG segment 0xFF{marker:02X} has a length of {length}: the file is damaged")
        pos += length


# -- PNG ----------------------------------------------------------------------------------------
def _png(data: bytes) -> ImageHeader:
    if len(data) < 24:
        raise BadImage("PNG ends before its header chunk (IHDR): the upload was cut short")
    if data[12:16] != b"IHDR":
        raise BadImage("PNG does not begin with its header chunk (IHDR): the file is damaged")
    width, height = struct.unpack_from(">II", data, 16)
    return ImageHeader("PNG", width, height, ".png")


# -- BMP ----------------------------------------------------------------------------------------
def _bmp(data: bytes) -> ImageHeader:
    if len(data) < 26:
        raise BadImage("BMP ends before its header: the upload was cut short")
    info_size = struct.unpack_from("<I", data, 14)[0]
    if info_size == 12:                           # OS/2 BITMAPCOREHEADER: unsigned 16-bit sides
        width, height = struct.unpack_from("<HH", data, 18)
    elif info_size >= 36:                         # BITMAPINFOHEADER and later: a negative height is top-down
        width, height = struct.unpack_from("<ii", data, 18)
        height = abs(height)
    else:
        raise BadImage(f"BMP with an info header of {info_size} bytes, which no BMP version has: the file "
                       f"is damaged")
    return ImageHeader("BMP", width, height, ".bmp")


# -- TIFF ---------------------------------------------------------------------------------------
_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_BITS, _TIFF_SAMPLES, _TIFF_ROWS_PER_STRIP = 256, 257, 258, 277, 278
_TIFF_TILE_WIDTH, _TIFF_TILE_HEIGHT = 322, 323
_TIFF_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}        # BYTE, SHORT, LONG, LONG8 (BigTIFF)


def _tiff_tags(data: bytes) -> dict[int, int]:
    """The first value of each tag of the first directory (the image OpenCV reads)."""
    order = "<" if data.startswith(b"II") else ">"
    big = struct.unpack_from(order + "H", data, 2)[0] == 43
    cut = BadImage("TIFF ends before its image directory: the upload was cut short")
    if len(data) < (16 if big else 8):
        raise cut
    ifd = struct.unpack_from(order + ("Q" if big else "I"), data, 8 if big else 4)[0]
    count_fmt, entry_size, field_size = ("Q", 20, 8) if big else ("H", 12, 4)
    if ifd + struct.calcsize(count_fmt) > len(data):
        raise cut
    count = struct.unpack_from(order + count_fmt, data, ifd)[0]
    first = ifd + struct.calcsize(count_fmt)
    if first + count * entry_size > len(data):
        raise cut
    tags = {}
    for pos in range(first, first + count * entry_size, entry_size):
        tag, kind = struct.unpack_from(order + "HH", data, pos)
        fmt = _TIFF_TYPES.get(kind)
        if fmt is None or tag in tags:
            continue
        n = struct.unpack_from(order + ("Q" if big else "I"), data, pos + 4)[0]
        where = pos + entry_size - field_size
        if n * struct.calcsize(fmt) > field_size:          # the values live elsewhere in the file
            where = struct.unpack_from(order + ("Q" if big else "I"), data, where)[0]
        if n and where + struct.calcsize(fmt) <= len(data):
            tags[tag] = struct.unpack_from(order + fmt, data, where)[0]
    return tags


def _tiff(data: bytes) -> ImageHeader:
    tags = _tiff_tags(data)
    if _TIFF_WIDTH not in tags or _TIFF_HEIGHT not in tags:
        raise BadImage("TIFF without its image width and length: the file is damaged")
    return ImageHeader("TIFF", tags[_TIFF_WIDTH], tags[_TIFF_HEIGHT], ".tif")


def _check_tiff_strips(data: bytes, header: ImageHeader) -> None:
    tags = _tiff_tags(data)
    if _TIFF_TILE_WIDTH in tags and _TIFF_TILE_HEIGHT in tags:
        width, rows = tags[_TIFF_TILE_WIDTH], tags[_TIFF_TILE_HEIGHT]
    else:
        width, rows = header.width, min(tags.get(_TIFF_ROWS_PER_STRIP, header.height), header.height)
    bits = tags.get(_TIFF_BITS, 1) * tags.get(_TIFF_SAMPLES, 1)
    strip_bytes = width * rows * bits // 8
    if strip_bytes > MAX_TIFF_STRIP_BYTES:
        raise BadImage(f"TIFF keeps its pixels in strips or tiles of {width} x {rows} pixels at {bits} bits "
                       f"({strip_bytes // 1_000_000} MB each), more than the "
                       f"{MAX_TIFF_STRIP_BYTES // 1_000_000} MB a camera's image needs: set the camera to "
                       f"8-bit JPEG, PNG or BMP")
