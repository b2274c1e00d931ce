"""Put a label on a parcel top as the line camera sees it (1280 x 1024 grayscale)."""
from __future__ import annotations

import numpy as np

from vision.synth.label import LABEL_H, LABEL_W

FRAME_W = 1280
FRAME_H = 1024


def _cardboard(rng, h: int, w: int) -> np.ndarray:
    import cv2
    base = float(rng.uniform(120, 175))
    coarse = rng.normal(0, 10, size=(h // 32 + 2, w // 32 + 2)).astype(np.float32)
    tex = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.standard_normal((h, w), dtype=np.float32) * 3.0
    return np.clip(base + tex + grain, 0, 255)


def label_quad(rng, tier: str) -> np.ndarray:
    """Frame corners (tl, tr, br, bl) where the label lands."""
    if tier == "rotated":
        angle = float(rng.uniform(-180.0, 180.0))
        scale = float(rng.uniform(0.8, 1.05))
    else:
        angle = float(rng.uniform(-4.0, 4.0)) + (90.0 if rng.random() < 0.5 else 0.0)
        angle += 180.0 if rng.random() < 0.5 else 0.0
        scale = float(rng.uniform(0.9, 1.1))
    w, h = LABEL_W * scale, LABEL_H * scale
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    t = np.deg2rad(angle)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    corners = corners @ rot.T
    if tier == "rotated":
        # A tilted parcel top: each corner moves by up to 7 % of the label size.
        corners += rng.uniform(-0.07, 0.07, size=(4, 2)) * np.array([w, h]).mean()
    half = np.abs(corners).max(axis=0)
    cx = rng.uniform(half[0] + 8, FRAME_W - half[0] - 8) if FRAME_W > 2 * half[0] + 16 else FRAME_W / 2
    cy = rng.uniform(half[1] + 8, FRAME_H - half[1] - 8) if FRAME_H > 2 * half[1] + 16 else FRAME_H / 2
    return (corners + np.array([cx, cy])).astype(np.float32)


def compose(label: np.ndarray, quad: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Frame (float32) with the label warped onto a parcel, and the label->frame homography."""
    import cv2
    frame = np.full((FRAME_H, FRAME_W), float(rng.uniform(35, 70)), np.float32)  # belt
    x0, y0 = quad.min(axis=0) - rng.uniform(40, 160, size=2)
    x1, y1 = quad.max(axis=0) + rng.uniform(40, 160, size=2)
    x0, y0 = int(max(0, x0)), int(max(0, y0))
    x1, y1 = int(min(FRAME_W, x1)), int(min(FRAME_H, y1))
    frame[y0:y1, x0:x1] = _cardboard(rng, y1 - y0, x1 - x0)
    src = np.array([[0, 0], [LABEL_W, 0], [LABEL_W, LABEL_H], [0, LABEL_H]], np.float32)
    homography = cv2.getPerspectiveTransform(src, quad)
    # Transparent border: the label is drawn over the parcel in place, no blending mask needed.
    cv2.warpPerspective(label.astype(np.float32), homography, (FRAME_W, FRAME_H), dst=frame,
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_TRANSPARENT)
    return frame, homography
