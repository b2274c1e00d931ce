"""Whether the camera is delivering usable images.

One parcel without an image is a parcel, and its record says why. A run of them is the camera:
unplugged, its upload stopped, or sending files that are not images. That is shown as a fault
with what to check, while the parcels go on to the no-read chute.
"""
from __future__ import annotations

import enum

from .readers import UNDECODABLE

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
        self._last_reason: str | None = None

    def seen(self, image: Image, reason: str | None = None) -> None:
        """One parcel's image; `reason` is why it was not usable (the read's no-read reason)."""
        if image is Image.USABLE or image is not self._kind:
            self._run = 0
        self._kind = image
        self._last_reason = None if image is Image.USABLE else reason
        if image is not Image.USABLE:
            self._run += 1

    @property
    def problem(self) -> str | None:
        """The state's message: the cause and what to do, in one sentence."""
        alarm = self.alarm
        return None if alarm is None else "; ".join(alarm)

    @property
    def alarm(self) -> tuple[str, str] | None:
        """(cause, remedy) while the camera delivers no usable image; None otherwise."""
        if self._run < self.after:
            return None
        if self._kind is Image.MISSING:
            return (f"camera silent: the last {self._run} parcels came without an image in {self.where} in time",
                    "check the camera's power, its network and its upload to that folder; parcels go to the "
                    "no-read chute meanwhile")
        # The last file's own reason may name the remedy (a resolution set too high, a pipe left in the folder).
        last = f" (the last: {self._last_reason.removeprefix(UNDECODABLE + ': ')})" if self._last_reason else ""
        return (f"camera images cannot be decoded: the files of the last {self._run} parcels in {self.where} are "
                f"not readable images{last}",
                "check the camera's image format (JPEG, PNG or BMP) and that it renames a file only once its upload "
                "is complete; parcels go to the no-read chute meanwhile")
