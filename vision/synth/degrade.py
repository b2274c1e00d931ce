"""Named difficulty tiers: what goes wrong between the label printer and the camera."""
from __future__ import annotations

import numpy as np

TIERS = ("clean", "rotated", "noisy", "damaged", "heldout", "heldout-damaged")
TIER_ALIASES = {"perspective": "rotated", "rotated/perspective": "rotated", "damaged-barcode": "damaged",
                "held-out": "heldout"}
# Tiers of labels set in a style the text model never saw (vision/synth/styles.py: HELD_OUT),
# photographed and damaged as the tier named beside them.
HELD_OUT_TIERS = {"heldout": "clean", "heldout-damaged": "damaged"}


def base_tier(tier: str) -> str:
    """The tier whose camera and damage a tier's frames get: itself, or a held-out tier's base."""
    return HELD_OUT_TIERS.get(tier, tier)


def tier_name(tier: str) -> str:
    name = TIER_ALIASES.get(tier, tier)
    if name not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; use one of {', '.join(TIERS)} "
                         f"(aliases: {', '.join(TIER_ALIASES)})")
    return name


def damage_barcodes(label: np.ndarray, boxes, rng) -> str:
    """Tear, tape over or cover every barcode across its full height; printed text stays intact.

    Returns the kind of damage. A band over the whole bar height is what defeats a scanner: any
    intact scan line through all bars would still decode.
    """
    kind = ("torn", "taped", "covered")[int(rng.integers(0, 3))]
    paper = int(np.median(label))
    for x0, y0, x1, y1 in boxes:
        width = x1 - x0
        band = int(width * rng.uniform(0.22, 0.45))
        a = int(rng.integers(x0 + width // 10, max(x0 + width // 10 + 1, x1 - band - width // 10)))
        b = a + band
        if kind == "covered":
            label[y0 - 4:y1 + 2, a:b] = int(rng.integers(150, 250))
        elif kind == "taped":
            glare = rng.uniform(0.85, 1.0, size=(1, b - a))
            region = label[y0 - 4:y1 + 2, a:b].astype(np.float32)
            label[y0 - 4:y1 + 2, a:b] = np.clip(region + (paper - region) * glare + 8, 0, 255).astype(np.uint8)
        else:
            # Torn paper: jagged edges, parcel cardboard shows through.
            cardboard = int(rng.integers(110, 170))
            edge = rng.integers(-6, 7, size=(y1 + 2) - (y0 - 4)).cumsum().clip(-12, 12)
            for i, row in enumerate(range(y0 - 4, y1 + 2)):
                label[row, max(x0, a + edge[i]):min(x1, b + edge[-1 - i])] = cardboard
    return kind


def photometric(frame: np.ndarray, rng, tier: str) -> np.ndarray:
    """Camera effects on the float32 frame, then 8-bit quantisation."""
    import cv2
    if tier == "noisy":
        effects = [e for e in ("blur", "noise", "glare", "contrast", "wrinkles") if rng.random() < 0.55]
        if len(effects) < 2:
            effects = list(rng.choice(["blur", "noise", "glare", "contrast", "wrinkles"], 2, replace=False))
        h, w = frame.shape
        if "wrinkles" in effects:
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            for _ in range(int(rng.integers(1, 4))):
                theta = rng.uniform(0, np.pi)
                d = xs * np.cos(theta) + ys * np.sin(theta) - rng.uniform(0, w)
                crease = np.exp(-(d / rng.uniform(6, 25)) ** 2)
                frame = frame * (1.0 - rng.uniform(0.1, 0.3) * crease)
            amp = rng.uniform(1.0, 3.0)
            map_x = xs + amp * np.sin(ys / rng.uniform(40, 90))
            frame = cv2.remap(frame, map_x, ys, cv2.INTER_LINEAR)
        if "contrast" in effects:
            k = rng.uniform(0.35, 0.65)
            frame = frame.mean() + (frame - frame.mean()) * k
        if "glare" in effects:
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ys, xs = np.ogrid[0:h, 0:w]
            r = rng.uniform(60, 180)
            frame = frame + rng.uniform(60, 140) * np.exp(-(((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * r * r)))
        if "blur" in effects:
            frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.6, 1.4))
        else:
            frame = cv2.GaussianBlur(frame, (0, 0), 0.5)
        if "noise" in effects:
            frame = frame + rng.normal(0, rng.uniform(3, 10), size=frame.shape).astype(np.float32)
    else:
        frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.4, 0.7))
        frame = frame + rng.normal(0, 2.0, size=frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)
