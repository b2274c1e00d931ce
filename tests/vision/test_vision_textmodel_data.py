"""The text model's training lines (vision/textmodel/data.py): no torch needed to cut them."""
import numpy as np

from vision.synth import random_routing_code
from vision.textmodel.data import KIND_ROUTING, LOOKALIKES, make_set


def test_default_letters_keep_the_streams_of_earlier_runs():
    # The committed model's runs drew their codes before `letters` existed: same seed, same codes.
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(50):
        hub = f"{int(a.integers(10, 1000)):03d}"
        letter = chr(ord("A") + int(a.integers(0, 26)))
        outlet = f"{letter}{int(a.integers(0, 100)):02d}" if a.random() < 0.7 else f"{int(a.integers(0, 1000)):03d}"
        assert random_routing_code(b, "SF") == f"{hub}-{outlet}-{int(a.integers(0, 100)):02d}"


def test_lookalike_labels_print_only_letters_a_digit_resembles():
    pics, targets, kinds = make_set(3, 12, lookalikes=1.0)
    codes = [t for t, k in zip(targets, kinds) if k == KIND_ROUTING]
    assert len(codes) >= 6 and pics.shape[1:] == (32, 256)
    outlets = [code.split("-")[1] for code in codes]
    assert all(o[0] in LOOKALIKES or o.isdigit() for o in outlets), outlets
    assert any(o[0] in LOOKALIKES for o in outlets), outlets


def test_without_lookalikes_the_letters_are_any():
    _, targets, kinds = make_set(3, 30)
    firsts = {t.split("-")[1][0] for t, k in zip(targets, kinds) if k == KIND_ROUTING}
    assert firsts - set(LOOKALIKES) - set("0123456789"), firsts
