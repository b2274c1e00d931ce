"""Find paper labels in a frame and warp each one flat and upright-or-upside-down.

A label is the brightest large rectangle in the frame (white paper on cardboard on a dark belt).
Work happens on a 4x smaller copy: the label is hundreds of pixels wide, so its outline survives.
Which short edge is the top cannot be told from the outline: both orientations are returned and
the text reader tries them in turn.
"""
from __future__ import annotations

import numpy as np

CANON_W = 520
CANON_H = 760
SHRINK = 4
MIN_AREA_FRACTION = 0.03
ASPECT_RANGE = (1.15, 1.9)   # long side / short side of a 100 x 150 / 100 x 180 mm label


def _otsu(values: np.ndarray) -> float:
    import cv2
    t, _ = cv2.threshold(values.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return float(t)


def _order_clockwise(pts: np.ndarray) -> np.ndarray:
    center = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - center[1], pts[:, 0] - center[0])
    return pts[np.argsort(angles)]   # y grows downwards: increasing angle runs clockwise on screen


def _candidate_quads(small: np.ndarray, threshold: float) -> list[tuple[float, np.ndarray]]:
    import cv2
    mask = (small > threshold).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    min_area = MIN_AREA_FRACTION * small.shape[0] * small.shape[1]
    found = []
    for contour in contours:
        area = cv2.contourArea(contour)
        if area < min_area:
            continue
        (cx, cy), (rw, rh), _ = rect = cv2.minAreaRect(contour)
        if rw < 1 or rh < 1:
            continue
        aspect = max(rw, rh) / min(rw, rh)
        fill = area / (rw * rh)
        if fill < 0.78 or not ASPECT_RANGE[0] <= aspect <= ASPECT_RANGE[1]:
            continue
        hull = cv2.convexHull(contour)
        hull_area = cv2.contourArea(hull)
        if area / max(hull_area, 1.0) < 0.85:
            continue
        # A 4-corner outline follows perspective; keep it only if it does not cut off a corner.
        approx = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True).reshape(-1, 2)
        if len(approx) == 4 and cv2.contourArea(approx) >= 0.97 * hull_area:
            pts = approx.astype(np.float32)
        else:
            pts = cv2.boxPoints(rect).astype(np.float32)
        found.append((area, _order_clockwise(pts)))
    return found


def find_labels(gray: np.ndarray, max_labels: int = 2) -> list[np.ndarray]:
    """Label outlines in frame pixels, each 4x2 (clockwise), largest first."""
    import cv2
    h, w = gray.shape
    small = cv2.resize(gray, (w // SHRINK, h // SHRINK), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (3, 3), 0)
    t1 = _otsu(small)
    bright = small[small > t1]
    thresholds = [t1]
    if bright.size > 100:
        # Belt, cardboard and paper make three levels; the paper is above the second split.
        thresholds.insert(0, _otsu(bright))
    for threshold in thresholds:
        found = _candidate_quads(small, threshold)
        if found:
            found.sort(key=lambda item: -item[0])
            return [(q + 0.5) * SHRINK - 0.5 for _, q in found[:max_labels]]
    return []


def orientations(quad: np.ndarray) -> list[np.ndarray]:
    """The two ways to map `quad` onto an upright portrait label: (tl, tr, br, bl) each."""
    edges = [np.linalg.norm(quad[(i + 1) % 4] - quad[i]) for i in range(4)]
    first_short = 0 if edges[0] + edges[2] <= edges[1] + edges[3] else 1
    a = np.roll(quad, -first_short, axis=0)
    b = np.roll(quad, -(first_short + 2), axis=0)
    # Try first the orientation whose top edge is higher in the frame.
    return [a, b] if a[:2, 1].mean() <= b[:2, 1].mean() else [b, a]


def warp_label(gray: np.ndarray, corners: np.ndarray) -> np.ndarray:
    import cv2
    dst = np.array([[0, 0], [CANON_W, 0], [CANON_W, CANON_H], [0, CANON_H]], np.float32)
    m = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    return cv2.warpPerspective(gray, m, (CANON_W, CANON_H), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
