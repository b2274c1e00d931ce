"""Synthetic Chinese express labels on parcels, in named difficulty tiers."""
from vision.synth.degrade import TIERS
from vision.synth.render import Scene, render_label, render_scene
from vision.synth.truth import ROUTING_SHAPES, LabelTruth, random_routing_code, random_truth

__all__ = ["ROUTING_SHAPES", "TIERS", "LabelTruth", "Scene", "random_routing_code", "random_truth", "render_label",
           "render_scene"]
