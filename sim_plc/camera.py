"""The simulated line camera: label images rendered ahead, dropped per tracking number.

Rendering a label costs tens of milliseconds; a real camera costs the controller nothing. So
every image of a run is rendered and encoded before the first parcel arrives, and the timed part
of the run only writes finished bytes into the camera folder.
"""
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_EXT = ".jpg"


@dataclass(frozen=True)
class ParcelLabel:
    """What is on a parcel: its label's ground truth and how hard it is to read."""
    truth: object | None                 # vision.synth.LabelTruth, None when no label faces the camera
    tier: str                            # a vision.synth tier, or "no-label"


def _render(args) -> bytes:
    import cv2
    label, seed = args
    rng = np.random.default_rng(seed)
    if label.truth is None:
        # A parcel lying label-down: cardboard and nothing to read.
        img = np.clip(rng.normal(150, 12, (1024, 1280)), 0, 255).astype(np.uint8)
    else:
        from vision.synth import render_label
        img = render_label(label.truth, rng, tier=label.tier)
    ok, buf = cv2.imencode(IMAGE_EXT, img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise RuntimeError("JPEG encoding of a simulated label failed")
    return buf.tobytes()


def render_all(labels: list[ParcelLabel], seed: int, workers: int = 2) -> list[bytes]:
    jobs = [(label, (seed, i)) for i, label in enumerate(labels)]
    if workers <= 1 or len(jobs) < 8:
        return [_render(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_render, jobs, chunksize=8))


class FolderCamera:
    """Drops `<tracking>.jpg` atomically (write then rename), as an FTP-uploading camera should."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def clear(self) -> None:
        for p in self.folder.glob("*" + IMAGE_EXT):
            p.unlink(missing_ok=True)

    def drop(self, tracking: int, image: bytes) -> None:
        tmp = self.folder / f".{tracking}.part"
        with open(tmp, "wb") as f:
            f.write(image)
        os.replace(tmp, self.folder / f"{tracking}{IMAGE_EXT}")
