"""Label frames from a pool of layouts: each parcel re-draws only its own label, not the whole scene.

A full frame from vision.synth costs 100-200 ms, most of it in what surrounds the printed label:
the parcel's cardboard, the warp onto the belt, blur and sensor noise over 1.3 megapixels. A
*layout* is one such frame for a courier and a tier, rendered in full once and kept on disk. A
parcel of that courier draws its label with the layout's random stream (same paper, ink, fonts,
placement; only the waybill, its barcodes and the routing code differ), and the difference
between its label and the layout's is warped into the layout frame with the layout's own
homography and blurred like a frame: every step after the label is linear in the label, so this
equals a full render up to the sensor noise, which the layout frame already carries.

The noisy tier bends the label (creases, remap) and scales contrast over the whole frame, so it
is always rendered in full.
"""
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PATCH_BLUR_SIGMA = 0.55            # the middle of the blur a clean frame gets (vision.synth.degrade)
PATCHABLE_TIERS = ("clean", "rotated", "damaged")
FRAME_SHAPE = (1024, 1280)


@dataclass
class Layout:
    frame: np.ndarray              # uint8 camera frame of the layout's own label
    homography: np.ndarray         # label pixels -> frame pixels
    art: np.ndarray                # the layout's label as printed (and damaged), uint8


def layout_seed(courier: str, tier: str, k: int) -> list[int]:
    digest = hashlib.sha1(f"{courier}/{tier}".encode()).digest()
    return [int.from_bytes(digest[:4], "big"), k]


def _art(truth, seed: list[int], tier: str) -> np.ndarray:
    """The label exactly as vision.synth.render_scene draws (and damages) it from this seed."""
    from vision.synth.degrade import damage_barcodes
    from vision.synth.label import draw_label
    rng = np.random.default_rng(seed)
    art = draw_label(truth, rng)
    if tier == "damaged":
        damage_barcodes(art.image, art.boxes["barcode"], rng)
    return art.image


def build_layout(courier: str, tier: str, k: int) -> Layout:
    from vision.synth import random_truth, render_scene
    seed = layout_seed(courier, tier, k)
    truth = random_truth(np.random.default_rng(seed + [1]), couriers=[courier])
    scene = render_scene(truth, np.random.default_rng(seed), tier)
    return Layout(scene.image, scene.homography, _art(truth, seed, tier))


def patched_frame(layout: Layout, truth, tier: str, k: int) -> np.ndarray:
    """The frame of `truth` on layout `k` of its courier (`layout` must be that one)."""
    import cv2
    diff = _art(truth, layout_seed(truth.courier, tier, k), tier).astype(np.float32) - layout.art
    ys, xs = np.nonzero(diff)
    frame = layout.frame.copy()
    if not len(xs):
        return frame
    corners = np.array([[xs.min(), ys.min()], [xs.max() + 1, ys.min()], [xs.max() + 1, ys.max() + 1],
                        [xs.min(), ys.max() + 1]], np.float32).reshape(-1, 1, 2)
    box = cv2.perspectiveTransform(corners, layout.homography).reshape(-1, 2)
    x0, y0 = np.maximum(np.floor(box.min(axis=0)) - 4, 0).astype(int)
    x1, y1 = np.minimum(np.ceil(box.max(axis=0)) + 4, [FRAME_SHAPE[1], FRAME_SHAPE[0]]).astype(int)
    if x1 <= x0 or y1 <= y0:
        return frame
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    patch = cv2.warpPerspective(diff, shift @ layout.homography, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR)
    patch = cv2.GaussianBlur(patch, (0, 0), PATCH_BLUR_SIGMA)
    roi = frame[y0:y1, x0:x1].astype(np.float32) + patch
    frame[y0:y1, x0:x1] = np.clip(np.rint(roi), 0, 255).astype(np.uint8)
    return frame


class LayoutStore:
    """One worker's layouts: in memory once used, on disk for every later run and worker."""

    def __init__(self, folder: Path, fingerprint: str):
        self.folder, self.fingerprint = Path(folder), fingerprint
        self._layouts: dict[tuple, Layout] = {}

    def get(self, courier: str, tier: str, k: int) -> Layout:
        key = (courier, tier, k)
        if key not in self._layouts:
            path = self.folder / f"layout-{self.fingerprint}-{courier}-{tier}-{k}.npz"
            try:
                with np.load(path) as z:
                    layout = Layout(z["frame"], z["homography"], z["art"])
                os.utime(path)                   # the cache pruning keeps layouts in use
            except (OSError, KeyError, ValueError):
                layout = build_layout(courier, tier, k)
                tmp = path.with_name(f"{path.stem}.{os.getpid()}.part.npz")
                np.savez(tmp, frame=layout.frame, homography=layout.homography, art=layout.art)
                os.replace(tmp, path)
            self._layouts[key] = layout
        return self._layouts[key]
