"""Whether an encoded image file is whole: an FTP upload appears before it is complete, and a
JPEG cut short decodes to a picture half gray. The two ends of the file tell.
"""
import struct

# What completeness() says of a file that an upload is still writing: it may yet become whole.
EMPTY = "empty file"
SHORTER_THAN_HEADER = "shorter than an image header"
NO_JPEG_END = "JPEG without its end marker"
NO_PNG_END = "PNG without IEND"
SHORT_BMP = "BMP shorter than its header says"
STILL_UPLOADING = frozenset({EMPTY, SHORTER_THAN_HEADER, NO_JPEG_END, NO_PNG_END, SHORT_BMP})
HEADER_BYTES = 8
TAIL_BYTES = 64      # a JPEG's end marker may be followed by a few padding zeros


def completeness(data: bytes, suffix: str, size: int | None = None) -> str | None:
    """None when the encoded image is whole, else what is missing.

    `data` is the file, or its first HEADER_BYTES and last TAIL_BYTES with `size` the file's
    length (file_completeness): the ends alone tell.
    """
    size = len(data) if size is None else size
    if not size:
        return EMPTY
    if suffix in (".jpg", ".jpeg"):
        if not data.startswith(b"\xff\xd8"):
            return "not a JPEG (no SOI marker)"
        return None if data.rstrip(b"\x00").endswith(b"\xff\xd9") else NO_JPEG_END
    if suffix == ".png":
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            return "not a PNG (bad signature)"
        return None if data[-12:-8] == b"\x00\x00\x00\x00" and data[-8:-4] == b"IEND" else NO_PNG_END
    if suffix == ".bmp":
        if len(data) < 6 or not data.startswith(b"BM"):
            return "not a BMP"
        return None if size >= struct.unpack("<I", data[2:6])[0] else SHORT_BMP
    return None   # TIFF has no end marker; the settle time alone decides
