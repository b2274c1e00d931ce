"""Where the controller gets each parcel's image: a folder the line camera uploads into."""
import asyncio
import logging
import os
import re
from pathlib import Path

from vision.camera_folder import IMAGE_SUFFIXES, file_completeness
from vision.image_whole import STILL_UPLOADING

log = logging.getLogger("sortline.edge")

# Cameras name their files in lower or upper case (123.jpg, 123.JPG) and Linux tells them apart.
IMAGE_EXTS = IMAGE_SUFFIXES + tuple(ext.upper() for ext in IMAGE_SUFFIXES)
# The names the camera gives: a tracking number (digits only) and an image suffix, in either case.
CAMERA_NAME = re.compile(r"[0-9]+(?:" + "|".join(re.escape(ext) for ext in IMAGE_SUFFIXES) + ")", re.IGNORECASE)
POLL_S = 0.001


class FolderImages:
    """Images named `<tracking number>.<ext>`.

    Most line cameras upload straight into that name, so a file shows before its last byte
    does: it is taken once its encoded data ends (JPEG end marker, PNG IEND, BMP's size). One
    still unfinished when the wait is over is taken as it is (the reader reads what is there);
    a file that is not an image at all is taken at once (the reader says so), and so is what is
    no file (a named pipe, a folder, a link): it is never opened in a way that could block.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self._exts = list(IMAGE_EXTS)

    def _find(self, tracking: int) -> Path | None:
        for i, ext in enumerate(self._exts):
            p = self.folder / f"{tracking}{ext}"
            # lexists: a link is found as what it is (the reader refuses it), and no error escapes.
            if os.path.lexists(p):
                if i:
                    # A camera keeps to one name: look for its next image under that one first.
                    self._exts.insert(0, self._exts.pop(i))
                return p
        return None

    async def wait(self, tracking: int, timeout_s: float) -> Path | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            p = self._find(tracking)
            if p is not None and not _uploading(p):
                return p
            if loop.time() >= deadline:
                return p
            await asyncio.sleep(POLL_S)

    def prune(self, keep: int) -> int:
        """Delete all but the newest `keep` camera images of the folder; returns how many went.

        Only the camera's own names (`<tracking number>.<ext>`) are deleted: a technician's
        `label-reference.jpg` or `calibration.png` beside them stays. Run in a thread: listing a
        folder of thousands of files takes milliseconds.
        """
        try:
            with os.scandir(self.folder) as found:
                images = [image for image in map(_camera_image, found) if image is not None]
        except OSError:
            return 0                  # no folder yet: the camera has not uploaded anything
        if len(images) <= keep:
            return 0
        images.sort()
        deleted = 0
        for _, path in images[:len(images) - keep]:
            try:
                os.unlink(path)
                deleted += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("old camera image %s not deleted (%s): the camera folder keeps growing; check "
                            "that the controller's user may delete files there", path, exc)
                break
        return deleted


def _camera_image(entry: os.DirEntry) -> tuple[float, str] | None:
    """(mtime, path) of a regular file that the camera named after a tracking number, else None."""
    if not CAMERA_NAME.fullmatch(entry.name):
        return None
    try:
        if not entry.is_file(follow_symlinks=False):
            return None
        return entry.stat(follow_symlinks=False).st_mtime, entry.path
    except FileNotFoundError:
        return None               # deleted since the listing


def _uploading(path: Path) -> bool:
    try:
        return file_completeness(path) in STILL_UPLOADING
    except OSError:
        return True           # gone or not readable yet: the camera is still at it
