"""Synthetic camera frames of labelled parcels, for tests, benchmarks and the simulated camera."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision.synth.degrade import HELD_OUT_TIERS, base_tier, damage_barcodes, photometric, tier_name
from vision.synth.label import draw_label
from vision.synth.styles import held_out_style
from vision.synth.scene import compose, label_quad
from vision.synth.truth import LabelTruth


@dataclass
class Scene:
    image: np.ndarray          # uint8 1024 x 1280
    truth: LabelTruth
    tier: str
    homography: np.ndarray     # label pixels -> frame pixels
    boxes: dict                # label-pixel boxes: routing, waybill_text, barcode
    damage: str | None = None


def render_scene(truth: LabelTruth, rng, tier: str = "clean") -> Scene:
    tier = tier_name(tier)
    art = draw_label(truth, rng, held_out_style(rng)) if tier in HELD_OUT_TIERS else draw_label(truth, rng)
    base = base_tier(tier)
    damage = damage_barcodes(art.image, art.boxes["barcode"], rng) if base == "damaged" else None
    quad = label_quad(rng, base)
    frame, homography = compose(art.image, quad, rng)
    return Scene(photometric(frame, rng, base), truth, tier, homography, art.boxes, damage)


def render_label(truth: LabelTruth, rng, tier: str = "clean") -> np.ndarray:
    """A 1280 x 1024 grayscale frame of a parcel top carrying the label described by `truth`."""
    return render_scene(truth, rng, tier).image
