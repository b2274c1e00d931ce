"""The simulated line camera: each parcel's label image, rendered ahead, dropped per tracking number.

A full frame from vision.synth costs 100-200 ms of CPU; a real camera costs the controller
nothing. So images are rendered by worker processes before they are needed (by default all of
them before the first parcel), on a pool of layouts (sim_plc.label_render: 30-50 ms a parcel), at
a lowered priority. Each image is a pure function of (seed, parcel index, label, layouts,
renderer source) and is kept in a disk cache under that key, so a second run of the same shift
renders nothing. The timed part of a run only copies finished files into the camera folder.
"""
import asyncio
import concurrent.futures
import hashlib
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .labels import ParcelLabel

log = logging.getLogger("sortline.sim")

IMAGE_EXT = ".jpg"
JPEG_QUALITY = 92
CACHE_VERSION = 2                     # change when what a cached file holds changes
DEFAULT_CACHE_BYTES = 2 * 1024 ** 3
DEFAULT_LAYOUTS = 16                  # layouts per courier and tier; 0: every frame rendered in full


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sortline" / "sim-labels"


def renderer_fingerprint() -> str:
    """Changes whenever the label generator's source changes, so stale images are never reused."""
    import vision.synth
    h = hashlib.sha1(f"{CACHE_VERSION}:{JPEG_QUALITY}".encode())
    for source in sorted(Path(vision.synth.__file__).parent.glob("*.py")):
        h.update(source.name.encode())
        h.update(source.read_bytes())
    return h.hexdigest()[:16]


_STORES: dict = {}                    # per worker process: layout folder -> LayoutStore


def render_jpeg(label: ParcelLabel, seed: int, index: int, layouts: int = 0, layout_dir=None) -> bytes:
    import cv2
    from .label_render import PATCHABLE_TIERS, LayoutStore, patched_frame
    rng = np.random.default_rng([seed, index])
    if label.truth is None:
        # A parcel lying label-down: cardboard and nothing to read.
        img = np.clip(rng.normal(150, 12, (1024, 1280)), 0, 255).astype(np.uint8)
    elif layouts and label.tier in PATCHABLE_TIERS and layout_dir is not None:
        store = _STORES.get(str(layout_dir))
        if store is None:
            store = _STORES[str(layout_dir)] = LayoutStore(layout_dir, renderer_fingerprint())
        k = (seed * 1_000_003 + index) % layouts
        img = patched_frame(store.get(label.truth.courier, label.tier, k), label.truth, label.tier, k)
    else:
        from vision.synth import render_label
        img = render_label(label.truth, rng, tier=label.tier)
    ok, buf = cv2.imencode(IMAGE_EXT, img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding of a simulated label failed")
    return buf.tobytes()


def _render_to(path: str, label: ParcelLabel, seed: int, index: int, layouts: int) -> float:
    """Worker side: render into `path` atomically; returns the CPU seconds it took."""
    t0 = time.process_time()
    data = render_jpeg(label, seed, index, layouts, Path(path).parent)
    tmp = f"{path}.{os.getpid()}.part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return time.process_time() - t0


def _lower_priority(nice: int) -> None:
    os.nice(nice)


class LabelImages:
    """Label images of one shift as files, rendered by worker processes at `nice` (0-19)."""

    def __init__(self, seed: int, cache_dir: Path | None = None, workers: int = 2,
                 max_cache_bytes: int = DEFAULT_CACHE_BYTES, layouts: int = DEFAULT_LAYOUTS, nice: int = 10):
        self.seed = seed
        self._temporary = cache_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="sortline-labels-")) if cache_dir is None else Path(cache_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create the label image cache {self.dir}: {exc.strerror}; "
                          f"give another folder with --label-cache") from None
        if not self._temporary:
            prune(self.dir, max_cache_bytes)
        self.fingerprint = renderer_fingerprint()
        self.workers = workers
        self.layouts = layouts
        self.nice = nice
        self._pool = None
        self._futures: dict[int, asyncio.Future] = {}
        self.rendered = 0
        self.cached = 0
        self.render_cpu_s: list[float] = []

    def path_for(self, index: int, label: ParcelLabel) -> Path:
        truth = label.truth
        content = (self.fingerprint, self.seed, index, label.tier, self.layouts,
                   None if truth is None else (truth.courier, truth.waybill, truth.routing_code))
        return self.dir / (hashlib.sha1(repr(content).encode()).hexdigest()[:24] + IMAGE_EXT)

    def request(self, index: int, label: ParcelLabel) -> None:
        """Make sure image `index` is on its way: a cache hit costs a stat, a miss a job for a worker."""
        if index in self._futures:
            return
        loop = asyncio.get_running_loop()
        path = self.path_for(index, label)
        if path.exists():
            os.utime(path)                   # the pruning keeps recently used images
            self.cached += 1
            done = loop.create_future()
            done.set_result(path)
            self._futures[index] = done
            return
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority,
                initargs=(self.nice,))
        job = loop.run_in_executor(self._pool, _render_to, str(path), label, self.seed, index, self.layouts)
        self._futures[index] = asyncio.ensure_future(self._finish(job, path))

    async def _finish(self, job, path: Path) -> Path:
        self.render_cpu_s.append(await job)
        self.rendered += 1
        return path

    def ready(self, index: int) -> Path | None:
        """The image file if it is finished now, else None (the camera is behind)."""
        future = self._futures.get(index)
        if future is None or not future.done():
            return None
        return future.result()

    async def wait(self, index: int, timeout_s: float | None = None) -> Path:
        return await asyncio.wait_for(asyncio.shield(self._futures[index]), timeout_s)

    def forget(self, index: int) -> None:
        self._futures.pop(index, None)

    async def prepare(self, labels, first_index: int = 0, timeout_s: float | None = None) -> None:
        """Request `labels` (numbered from `first_index`) and wait until every one is on disk."""
        for i, label in enumerate(labels, start=first_index):
            self.request(i, label)
        pending = [self._futures[i] for i in range(first_index, first_index + len(labels))]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending), timeout_s)

    def stop_workers(self) -> None:
        """End the worker processes (and the thread that talks to them) once nothing is left to render."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        for future in self._futures.values():
            future.cancel()
        self.stop_workers()
        if self._temporary:
            shutil.rmtree(self.dir, ignore_errors=True)


def prune(folder: Path, max_bytes: int) -> None:
    """Keep the cache under `max_bytes` by removing the least recently used images and layouts."""
    files = [(p.stat().st_mtime, p.stat().st_size, p) for p in folder.iterdir()
             if p.suffix in (IMAGE_EXT, ".npz")]
    total = sum(size for _, size, _ in files)
    if total <= max_bytes:
        return
    for _, size, p in sorted(files):
        p.unlink(missing_ok=True)
        total -= size
        if total <= max_bytes * 0.8:
            break
    log.info("label image cache %s pruned to %.0f MB", folder, total / 1e6)


class FolderCamera:
    """Drops `<tracking>.jpg` atomically (write then rename), as an FTP-uploading camera should."""

    def __init__(self, folder):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create the camera folder {self.folder}: {exc.strerror}; "
                          f"check [camera] folder in the line config") from None

    def clear(self) -> None:
        for p in self.folder.glob("*" + IMAGE_EXT):
            p.unlink(missing_ok=True)

    def drop(self, tracking: int, image: Path) -> None:
        tmp = self.folder / f".{tracking}.part"
        shutil.copyfile(image, tmp)
        os.replace(tmp, self.folder / f"{tracking}{IMAGE_EXT}")
