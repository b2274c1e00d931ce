"""Folder camera: picks up images that line cameras upload by FTP.

An FTP upload appears in the folder before it is complete. A file is taken only when
1. its name is not a temporary upload name (.part, .tmp, .filepart, leading dot),
2. its size and modification time have not changed for `settle_s`, and
3. its encoded data is whole: JPEG ends with the EOI marker, PNG with the IEND chunk, BMP and TIFF
   hold their declared size.
A file that never becomes whole within `give_up_s` is moved to `rejected/` with a reason file, so
a broken upload cannot block the line. Taken files are moved to `done/` (or deleted, or left).
Files are opened as vision.image_input opens them: regular files only, without blocking, at most
MAX_FILE_BYTES.
"""
from __future__ import annotations

import os
import shutil
import time

from vision.camera import Camera, CameraError, Frame
from vision.image_input import BadImage, open_regular, read_image_file
from vision.image_whole import EMPTY, HEADER_BYTES, SHORTER_THAN_HEADER, TAIL_BYTES, completeness

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
TEMP_SUFFIXES = (".part", ".tmp", ".filepart", ".crdownload", ".partial", ".uploading")
POLL_S = 0.01

def file_completeness(path) -> str | None:
    """completeness() of an image file from its two ends only: a few system calls, cheap enough
    to ask every millisecond while an upload is under way. Raises OSError (gone, no permission).

    Something that is not a regular file (a named pipe, a device, a folder, a link) is said so at
    once, without blocking: it never becomes an image.
    """
    suffix = os.path.splitext(str(path))[1].lower()
    try:
        fd = open_regular(path)
    except BadImage as exc:
        return str(exc)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < HEADER_BYTES:
            return EMPTY if size == 0 else SHORTER_THAN_HEADER
        if size <= HEADER_BYTES + TAIL_BYTES:
            return completeness(f.read(), suffix)
        head = f.read(HEADER_BYTES)
        f.seek(size - TAIL_BYTES)
        return completeness(head + f.read(), suffix, size)


class FolderCamera(Camera):
    name = "folder"

    def __init__(self, path: str, settle_s: float = 0.05, give_up_s: float = 30.0, after: str = "move",
                 decode: bool = False):
        if after not in ("move", "delete", "keep"):
            raise CameraError(f"folder camera: after={after!r}; use move, delete or keep")
        if not os.path.isdir(path):
            raise CameraError(f"folder camera: {path} is not a folder; create it or fix the camera path")
        self.path = path
        self.settle_s = float(settle_s)
        self.give_up_s = float(give_up_s)
        self.after = after
        self.decode = decode
        self._seen: dict[str, tuple[int, float, float]] = {}   # name -> (size, mtime, first seen mono)
        self._kept: set[str] = set()
        self._closed = False

    def _candidates(self) -> list[os.DirEntry]:
        try:
            entries = list(os.scandir(self.path))
        except OSError as exc:
            raise CameraError(f"folder camera: cannot list {self.path} ({exc.strerror})") from None
        out = []
        for e in entries:
            name = e.name.lower()
            if name.startswith(".") or name.endswith(TEMP_SUFFIXES) or not name.endswith(IMAGE_SUFFIXES):
                continue
            try:
                if e.name in self._kept or not e.is_file(follow_symlinks=False):
                    continue
                out.append((e.stat().st_mtime, e.name, e))
            except FileNotFoundError:
                continue          # deleted since the listing
        out.sort(key=lambda t: t[:2])
        return [e for _, _, e in out]

    def _set_aside(self, name: str, folder: str, reason: str | None = None) -> None:
        try:
            self._move(name, folder, reason)
        except FileNotFoundError:
            pass                  # deleted or moved by someone else meanwhile: nothing left to set aside

    def _move(self, name: str, folder: str, reason: str | None) -> None:
        src = os.path.join(self.path, name)
        if self.after == "keep" and folder == "done":
            self._kept.add(name)
            return
        if self.after == "delete" and folder == "done":
            os.remove(src)
            return
        dst_dir = os.path.join(self.path, folder)
        os.makedirs(dst_dir, exist_ok=True)
        shutil.move(src, os.path.join(dst_dir, name))
        if reason:
            with open(os.path.join(dst_dir, name + ".reason.txt"), "w") as fh:
                fh.write(reason + "\n")

    def _try_take(self, entry: os.DirEntry, now: float) -> Frame | None:
        try:
            st = entry.stat()
        except FileNotFoundError:
            self._seen.pop(entry.name, None)
            return None
        size, mtime = st.st_size, st.st_mtime
        prev = self._seen.get(entry.name)
        if prev is None or prev[:2] != (size, mtime):
            self._seen[entry.name] = (size, mtime, prev[2] if prev else now)
            return None
        first_seen = prev[2]
        if now - first_seen < self.settle_s or time.time() - mtime < self.settle_s:
            return None
        try:
            data = read_image_file(entry.path)
            missing = completeness(data, os.path.splitext(entry.name)[1].lower())
        except BadImage as exc:
            if not os.path.lexists(entry.path):
                self._seen.pop(entry.name, None)
                return None
            missing = str(exc)    # no permission yet, too big, replaced by something else
        if missing is not None:
            if now - first_seen > self.give_up_s:
                self._seen.pop(entry.name, None)
                self._set_aside(entry.name, "rejected", f"{missing} after {self.give_up_s:.0f} s")
            return None
        self._seen.pop(entry.name, None)
        self._set_aside(entry.name, "done")
        image, meta = data, {"path": entry.path, "bytes": len(data)}
        if self.decode:
            from vision.image_input import load_gray
            try:
                image = load_gray(data)
            except BadImage as exc:
                meta["bad_image"] = str(exc)   # the encoded file goes on; whoever reads it says why too
        return Frame(image, f"folder:{entry.name}", now, meta)

    def grab(self, timeout_s: float) -> Frame | None:
        if self._closed:
            raise CameraError("folder camera is closed")
        end = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            for entry in self._candidates():
                frame = self._try_take(entry, now)
                if frame is not None:
                    return frame
            if now >= end:
                return None
            time.sleep(min(POLL_S, max(0.0, end - now)))

    def close(self) -> None:
        self._closed = True
