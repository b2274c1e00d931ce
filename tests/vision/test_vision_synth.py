import numpy as np
import pytest

from vision.synth import TIERS, LabelTruth, random_truth, render_label, render_scene
from vision.waybill import check_waybill


def test_random_truth_respects_choices(rng):
    codes = ["571-J25-03", "010-B12-07"]
    for _ in range(100):
        truth = random_truth(rng, routing_codes=codes, couriers=["SF", "EMS"])
        assert isinstance(truth, LabelTruth)
        assert truth.routing_code in codes
        assert truth.courier in ("SF", "EMS")
        assert check_waybill(truth.waybill).courier == truth.courier


def test_unknown_courier_is_refused(rng):
    with pytest.raises(ValueError, match="unknown courier"):
        random_truth(rng, couriers=["DHL"])


def test_unknown_tier_is_refused(rng):
    with pytest.raises(ValueError, match="unknown tier"):
        render_label(random_truth(rng), rng, tier="foggy")


@pytest.mark.parametrize("tier", TIERS)
def test_frames_are_camera_sized_gray(tier, rng):
    img = render_label(random_truth(rng), rng, tier=tier)
    assert img.shape == (1024, 1280) and img.dtype == np.uint8
    assert img.std() > 20  # a label on a parcel, not a blank frame


def test_same_seed_same_frame():
    truth = LabelTruth("SF", "SF1234567890123", "571-J25-03")
    a = render_label(truth, np.random.default_rng(3))
    b = render_label(truth, np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_damage_spares_printed_text(rng):
    scene = render_scene(random_truth(rng), rng, tier="damaged")
    assert scene.damage in ("torn", "taped", "covered")
    assert scene.boxes["waybill_text"] and scene.boxes["routing"]
