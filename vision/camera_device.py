"""OpenCV capture source: a camera index, a video file or a stream URL.

A capture read can block for seconds when a GigE/RTSP camera stalls, so reads run on a reader
thread and `grab` waits for the next frame with a bound.
"""
from __future__ import annotations

import threading
import time

from vision.camera import Camera, CameraError, Frame


class DeviceCamera(Camera):
    name = "device"

    def __init__(self, source, width: int | None = None, height: int | None = None, open_timeout_s: float = 5.0):
        import cv2
        self.source = source
        self._cv2 = cv2
        cap = cv2.VideoCapture()
        # Opening can hang on an unreachable stream: give the backend its own bound.
        cap.setExceptionMode(False)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000)]
        ok = cap.open(source, cv2.CAP_ANY, params) if isinstance(source, (int, str)) else False
        if not ok or not cap.isOpened():
            raise CameraError(f"capture source {source!r} cannot be opened: check the device index "
                              "(0, 1, ...), the cable, or the file path / stream URL")
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap = cap
        self._cond = threading.Condition()
        self._frame = None
        self._count = 0
        self._ended = False
        self._closed = False
        self._thread = threading.Thread(target=self._reader, name=f"capture-{source}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        while not self._closed:
            ok, img = self._cap.read()
            with self._cond:
                if not ok:
                    self._ended = True
                    self._cond.notify_all()
                    return
                self._count += 1
                self._frame = Frame(img, f"device:{self.source}#{self._count}", time.monotonic(),
                                    {"frame": self._count})
                self._cond.notify_all()
                # A file source would race ahead of the consumer: hand over one frame at a time.
                while self._frame is not None and not self._closed:
                    self._cond.wait(0.1)

    def grab(self, timeout_s: float) -> Frame | None:
        if self._closed:
            raise CameraError("capture source is closed")
        end = time.monotonic() + timeout_s
        with self._cond:
            while self._frame is None:
                if self._ended:
                    raise CameraError(f"capture source {self.source!r} ended or failed (end of file, "
                                      "unplugged camera or dropped stream)")
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=2.0)
        self._cap.release()
