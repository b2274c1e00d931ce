"""Label thumbnails for the last parcels: decoded at reduced size, cached, off the event loop.

Only images of parcels the screen lists are served, looked up by tracking number: a request can
never name a path.
"""
import asyncio
import collections
from concurrent.futures import ThreadPoolExecutor

from drivers.link import bounded

THUMB_WIDTH_PX = 320
JPEG_QUALITY = 80
CACHE_SIZE = 64
TIMEOUT_S = 2.0


def make_thumbnail(path, width_px: int = THUMB_WIDTH_PX) -> bytes | None:
    """JPEG bytes of the image scaled to `width_px`, or None if it cannot be read (moved, truncated)."""
    import cv2
    # JPEG decodes at a quarter size for a fraction of the cost of a full decode.
    img = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    if img is None or img.size == 0:
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None or img.size == 0:
            return None
    h, w = img.shape[:2]
    if w > width_px:
        img = cv2.resize(img, (width_px, max(1, round(h * width_px / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return buf.tobytes() if ok else None


class Thumbnails:
    def __init__(self, recent):
        self.recent = recent                       # the controller's deque of the last parcels
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="screen-thumbs")

    def image_of(self, tracking: int) -> str | None:
        for parcel in list(self.recent):
            if parcel.get("tracking") == tracking:
                return parcel.get("image")
        return None

    async def get(self, tracking: int) -> bytes | None:
        path = self.image_of(tracking)
        if path is None:
            return None
        key = (tracking, path)        # tracking numbers restart when the PLC reboots; paths may repeat
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        loop = asyncio.get_running_loop()
        data = await bounded(loop.run_in_executor(self._pool, make_thumbnail, path), TIMEOUT_S)
        if data is not None:
            self._cache[key] = data
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return data

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
