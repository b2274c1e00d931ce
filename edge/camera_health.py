"""Whether the camera is delivering usable images.

One parcel without an image is a parcel, and its record says why. A run of them is the camera:
unplugged, its upload stopped, or sending files that are not images. That is shown as a fault
with what to check, while the parcels go on to the no-read chute.
"""
from __future__ import annotations

import enum

# Parcels in a row: a label face down or one lost upload must not raise a fault at the line.
PROBLEM_AFTER = 10


class Image(enum.Enum):
    USABLE = "usable"
    MISSING = "missing"            # no file within the camera's wait
    UNDECODABLE = "undecodable"    # a file, but not an image


class CameraHealth:
    def __init__(self, where: str, after: int = PROBLEM_AFTER):
        self.where = where
        self.after = after
        self._kind: Image = Image.USABLE
        self._run = 0

    def seen(self, image: Image) -> None:
        if image is Image.USABLE or image is not self._kind:
            self._run = 0
        self._kind = image
        if image is not Image.USABLE:
            self._run += 1

    @property
    def problem(self) -> str | None:
        if self._run < self.after:
            return None
        if self._kind is Image.MISSING:
            return (f"camera silent: the last {self._run} parcels came without an image in {self.where} in time; "
                    f"check the camera's power, its network and its upload to that folder; parcels go to the "
                    f"no-read chute meanwhile")
        return (f"camera images cannot be decoded: the files of the last {self._run} parcels in {self.where} are "
                f"not readable images; check the camera's image format (JPEG, PNG or BMP) and that it renames a "
                f"file only once its upload is complete; parcels go to the no-read chute meanwhile")
