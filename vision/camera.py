"""Camera sources behind one interface, chosen by name and imported lazily.

- "sim": synthetic labelled parcels, rendered ahead into a pool (vision.camera_sim);
- "folder": images that line cameras upload by FTP into a folder (vision.camera_folder);
- "device": an OpenCV capture device, video file or stream URL (vision.camera_device).

`grab(timeout_s)` is blocking and bounded; from asyncio use `await grab_async(cam, timeout_s)`,
which runs it in a worker thread (OpenCV and the file system release the GIL).
"""
from __future__ import annotations

import abc
import asyncio
import importlib
from dataclasses import dataclass, field

import numpy as np


class CameraError(RuntimeError):
    """A camera cannot deliver frames; the message says what to check."""


@dataclass
class Frame:
    image: np.ndarray | bytes          # decoded pixels, or the encoded file as uploaded
    source: str                        # camera name plus file name or frame number
    captured_mono_s: float             # time.monotonic() when the frame was taken or picked up
    meta: dict = field(default_factory=dict)


class Camera(abc.ABC):
    name = "camera"

    @abc.abstractmethod
    def grab(self, timeout_s: float) -> Frame | None:
        """The next frame, or None when none came within `timeout_s`."""

    def close(self) -> None:
        """Release the source; grabbing afterwards raises CameraError."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


async def grab_async(camera: Camera, timeout_s: float) -> Frame | None:
    # The thread is bounded by grab's own timeout; wait_for adds a margin so a stuck driver
    # cannot hold the event loop's caller forever.
    return await asyncio.wait_for(asyncio.to_thread(camera.grab, timeout_s), timeout_s + 1.0)


_KINDS = {
    "sim": ("vision.camera_sim", "SimCamera"),
    "folder": ("vision.camera_folder", "FolderCamera"),
    "device": ("vision.camera_device", "DeviceCamera"),
}


def open_camera(kind: str, **options) -> Camera:
    if kind not in _KINDS:
        raise CameraError(f"unknown camera kind {kind!r}; use one of: {', '.join(sorted(_KINDS))}")
    module, cls = _KINDS[kind]
    return getattr(importlib.import_module(module), cls)(**options)
