"""Image files that claim more than they hold, and other things a camera folder may contain.

Built here, byte by byte, the way they were met on sites: a 333-byte JPEG whose frame header
says 30000 x 30000, a 109 kB PNG of 30000 x 30000 one-bit pixels that decodes in full, and the
like. Each decodes (or would decode) in OpenCV.
"""
import functools
import os
import socket
import struct
import zlib

import cv2
import numpy as np

FLOOD_SIDE = 30000
CLAIM = f"image claims {FLOOD_SIDE} x {FLOOD_SIDE} pixels"


def jpeg_claiming(width: int, height: int) -> bytes:
    """A valid 16 x 16 JPEG whose frame header (SOF0) says `width` x `height`: libjpeg allocates
    and fills the whole claimed image, the data it lacks read as gray."""
    ok, buf = cv2.imencode(".jpg", np.full((16, 16), 128, np.uint8))
    assert ok
    data = bytearray(buf.tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@functools.lru_cache(maxsize=4)
def png_of_zeros(width: int, height: int) -> bytes:
    """A complete one-bit gray PNG of `width` x `height` black pixels: rows of zeros compress a
    thousand to one, so 30000 x 30000 is 109 kB and decodes to 900 MB of gray."""
    row = b"\x00" * (1 + (width + 7) // 8)          # filter byte, then the packed pixels
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b""))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header of `width` x `height` 8-bit gray pixels with a tiny compressed body."""
    body = zlib.compress(b"\x00" * (width + 1) * 4)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b""))


def bmp_claiming(width: int, height: int) -> bytes:
    """An 8-bit gray BMP header (BITMAPINFOHEADER) of `width` x `height` over a few bytes of pixels."""
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    pixels = b"\x00" * 64
    offset = 14 + 40 + len(palette)
    return (b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 0, len(pixels), 2835, 2835, 256, 0)
            + palette + pixels)


def bmp_core(width: int, height: int) -> bytes:
    """A 24-bit BMP with the 12-byte OS/2 header (16-bit sides), gray ramp pixels."""
    row = bytes(((x * 7) % 256 for x in range(width) for _ in range(3)))
    row += b"\x00" * (-len(row) % 4)
    pixels = row * height
    offset = 14 + 12
    return (b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
            + struct.pack("<IHHHH", 12, width, height, 1, 24) + pixels)


def tiff(width: int, height: int, *, order: str = "<", big: bool = False, bits: int = 8, samples: int = 1,
         rows_per_strip: int | None = None, body: bytes | None = None) -> bytes:
    """An uncompressed TIFF (classic or BigTIFF, either byte order) of one strip. Without `body`,
    the strip holds every pixel (a decodable gray ramp); with one, the header may claim more."""
    if body is None:
        body = bytes((x + y) % 256 for y in range(height) for x in range(width * samples * bits // 8))
    off, count_fmt, field, entry = ("Q", "Q", 8, 20) if big else ("I", "H", 4, 12)
    tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [bits] * samples), (259, 3, [1]),
            (262, 3, [1 if samples == 1 else 2]), (273, 4, [0]), (277, 3, [samples]),
            (278, 4, [rows_per_strip or height]), (279, 4, [len(body)])]
    head = b"II" if order == "<" else b"MM"
    head += struct.pack(order + "HHHQ", 43, 8, 0, 16) if big else struct.pack(order + "HI", 42, 8)
    ifd_end = len(head) + struct.calcsize(count_fmt) + len(tags) * entry + field
    outside, entries = b"", b""
    strip_at = None
    for tag, kind, values in tags:
        size = {3: 2, 4: 4}[kind]
        packed = b"".join(struct.pack(order + {3: "H", 4: "I"}[kind], v) for v in values)
        if tag == 273:
            strip_at = len(head) + struct.calcsize(count_fmt) + len(entries) + 4 + (8 if big else 4)
        if len(values) * size <= field:
            value = packed.ljust(field, b"\x00")
        else:
            value = struct.pack(order + off, ifd_end + len(outside))
            outside += packed
        entries += struct.pack(order + "HH" + ("Q" if big else "I"), tag, kind, len(values)) + value
    data = bytearray(head + struct.pack(order + count_fmt, len(tags)) + entries + struct.pack(order + off, 0)
                     + outside)
    struct.pack_into(order + "I", data, strip_at, len(data))       # the strip follows everything else
    return bytes(data) + body


def progressive_jpeg_with_scans(extra_scans: int, side: int = 64) -> bytes:
    """A progressive JPEG followed by `extra_scans` empty scans: each is ten bytes in the file and
    a pass over the whole image in the decoder."""
    ok, buf = cv2.imencode(".jpg", np.full((side, side), 128, np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    data = buf.tobytes()
    last = data.rfind(b"\xff\xda")
    header = data[last:last + 2 + struct.unpack(">H", data[last + 2:last + 4])[0]]
    return data[:-2] + header * extra_scans + b"\xff\xd9"


def floods() -> dict[str, bytes]:
    """Files that claim 30000 x 30000 pixels, by the name a camera would give them."""
    return {"jpg": jpeg_claiming(FLOOD_SIDE, FLOOD_SIDE), "png": png_of_zeros(FLOOD_SIDE, FLOOD_SIDE),
            "bmp": bmp_claiming(FLOOD_SIDE, FLOOD_SIDE),
            "tif": tiff(FLOOD_SIDE, FLOOD_SIDE, body=b"\x00" * 4096)}


def make_not_a_file(path, kind: str):
    """Something at `path` that is no regular file; returns what must be kept open meanwhile."""
    path = str(path)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        os.mkdir(path)
    elif kind == "link to /dev/zero":
        os.symlink("/dev/zero", path)
    elif kind == "dangling link":
        os.symlink(path + ".gone", path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        return sock
    elif kind == "sparse 2 GB":
        with open(path, "wb") as fh:
            fh.truncate(2 * 2**30)
    else:
        raise ValueError(kind)
    return None


NOT_FILES = {"fifo": "named pipe (FIFO)", "folder": "a folder", "link to /dev/zero": "a symbolic link",
             "dangling link": "a symbolic link", "socket": "a socket",
             "sparse 2 GB": "the file is 2048 MB, more than the 64 MB"}


def peak_rss_kb(pid: int | str = "self") -> int:
    """The process's peak resident memory (VmHWM), in kB."""
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


def reset_peak_rss() -> bool:
    """Start this process's VmHWM again from its current memory; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
