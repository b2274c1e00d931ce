"""Synthetic Chinese express labels on parcels, in named difficulty tiers."""
from vision.synth.degrade import TIERS
from vision.synth.render import Scene, render_label, render_scene
from vision.synth.truth import LabelTruth, random_routing_code, random_truth

__all__ = ["TIERS", "LabelTruth", "Scene", "random_routing_code", "random_truth", "render_label",
           "render_scene"]
