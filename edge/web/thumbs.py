"""Label thumbnails for the last parcels: decoded at reduced size, cached, off the event loop.

Only images of parcels the screen lists are served, looked up by tracking number: a request can
never name a path. The image file is read as the label readers read it (vision.image_input):
a regular file only, never one that could block, and never decoded when its header claims more
pixels than a camera sends. Such a file gets no thumbnail, and refused() says why.
"""
import asyncio
import collections
import logging
from concurrent.futures import ThreadPoolExecutor

from drivers.timed_awaits import bounded
from vision.image_header import limit_opencv_decoding

log = logging.getLogger("sortline.screen")

THUMB_WIDTH_PX = 320
JPEG_QUALITY = 80
CACHE_SIZE = 64
TIMEOUT_S = 2.0


def make_thumbnail(path, width_px: int = THUMB_WIDTH_PX) -> bytes:
    """JPEG bytes of the image scaled to `width_px`. Raises vision.image_input.BadImage with the
    reason when the file gives no image (moved, not a file, too big, damaged)."""
    import cv2

    from vision.image_input import BadImage, decode, read_image_file
    data = read_image_file(path)
    try:
        # JPEG decodes at a quarter size for a fraction of the cost of a full decode.
        img = decode(data, cv2.IMREAD_REDUCED_GRAYSCALE_4)
    except BadImage:
        img = decode(data, cv2.IMREAD_GRAYSCALE)
    h, w = img.shape[:2]
    if w > width_px:
        img = cv2.resize(img, (width_px, max(1, round(h * width_px / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise BadImage("the thumbnail could not be encoded")
    return buf.tobytes()


class Thumbnails:
    def __init__(self, recent):
        # OpenCV's own pixel limit, in force if cv2 is not imported yet; set here, on the event
        # loop's thread, since changing the environment while another thread reads it is unsafe.
        limit_opencv_decoding()
        self.recent = recent                       # the controller's deque of the last parcels
        self._cache: collections.OrderedDict = collections.OrderedDict()   # key -> JPEG bytes, or why not (str)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="screen-thumbs")

    def image_of(self, tracking: int) -> str | None:
        for parcel in list(self.recent):
            if parcel.get("tracking") == tracking:
                return parcel.get("image")
        return None

    async def get(self, tracking: int) -> bytes | None:
        """The parcel's thumbnail; None when the screen lists no such parcel, it came without an
        image, or its image gives no thumbnail (then refused() says why)."""
        path = self.image_of(tracking)
        if path is None:
            return None
        key = (tracking, path)        # tracking numbers restart when the PLC reboots; paths may repeat
        if key not in self._cache:
            self._cache[key] = await bounded(asyncio.get_running_loop().run_in_executor(
                self._pool, _thumbnail_or_reason, path), TIMEOUT_S)
            if isinstance(self._cache[key], str):
                log.warning("no label thumbnail for parcel %d: %s", tracking, self._cache[key])
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        found = self._cache[key]
        return found if isinstance(found, bytes) else None

    def refused(self, tracking: int) -> str | None:
        """Why the parcel's image gives no thumbnail, once get() has tried; else None."""
        found = self._cache.get((tracking, self.image_of(tracking)))
        return found if isinstance(found, str) else None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _thumbnail_or_reason(path) -> bytes | str:
    from vision.image_input import BadImage
    try:
        return make_thumbnail(path)
    except BadImage as exc:
        return f"the image file {path} gives no thumbnail: {exc}"
