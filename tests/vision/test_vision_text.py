"""The trained text model, end to end through read_label (real ONNX model, no stand-ins)."""
import numpy as np
import pytest

from vision import read_label
from vision.labelfind import find_labels
from vision.synth import random_truth, render_label, render_scene
from vision.textmodel import runtime

pytestmark = pytest.mark.skipif(not runtime.status()[0], reason=runtime.status()[1])


def _reads(tier, n, seed, budget_ms=200.0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        truth = random_truth(rng, routing_codes=["571-J25-03", "100-B12-07", "318-409-22-05"])
        out.append((truth, read_label(render_label(truth, rng, tier), budget_ms=budget_ms)))
    return out


def test_damaged_barcodes_are_read_from_the_printed_number():
    results = _reads("damaged", 25, seed=71)
    by_text = [r for t, r in results if r.waybills == (t.waybill,) and r.sources["waybill"] == "text"]
    wrong = [(t, r) for t, r in results if r.waybills and r.waybills != (t.waybill,)]
    # Barcode-only reading gets none of these. 22 of 25 with the Chinese font installed, 20 with
    # pinyin labels (no CJK font); the rest are no reads, never wrong.
    assert len(by_text) >= 19, [(t.waybill, r.no_read_reason) for t, r in results]
    assert not wrong


def test_routing_code_is_read_beside_the_barcode():
    results = _reads("clean", 20, seed=72)
    assert all(r.waybills == (t.waybill,) for t, r in results)
    assert sum(r.routing_code == t.routing_code for t, r in results) >= 18
    assert all(r.routing_code in (None, t.routing_code) for t, r in results)


def test_label_outline_is_found_in_every_tier():
    rng = np.random.default_rng(73)
    for tier in ("clean", "rotated", "damaged"):
        found = sum(bool(find_labels(render_scene(random_truth(rng), rng, tier).image)) for _ in range(10))
        assert found >= 9, tier


def test_upside_down_labels_read_without_barcode():
    rng = np.random.default_rng(74)
    read = 0
    for _ in range(6):
        truth = random_truth(rng)
        img = render_label(truth, rng, "damaged")
        upright = read_label(img, budget_ms=200)
        flipped = read_label(img[::-1, ::-1].copy(), budget_ms=200)
        assert flipped.routing_code == upright.routing_code == truth.routing_code
        assert set(flipped.waybills) <= {truth.waybill} and set(upright.waybills) <= {truth.waybill}
        read += (flipped.waybills == (truth.waybill,)) + (upright.waybills == (truth.waybill,))
    assert read >= 9


@pytest.mark.parametrize("tier", ["clean", "rotated"])
def test_text_is_read_only_when_the_barcode_does_not_answer(tier):
    """text_needed (the controller's "when-needed" mode) is asked once a waybill barcode is read,
    on the frame or on the flattened label; a False answer skips text reading altogether."""
    rng = np.random.default_rng(74)
    asked = []

    def not_needed(read):
        asked.append(read.waybills)
        return False

    for _ in range(8):
        truth = random_truth(rng, routing_codes=["571-J25-03", "100-B12-07"])
        img = render_label(truth, rng, tier)
        asked.clear()
        barcode_only = read_label(img, budget_ms=200.0, text_needed=not_needed)
        assert barcode_only.waybills == (truth.waybill,)
        assert barcode_only.sources["waybill"] == "barcode" and barcode_only.routing_code is None
        assert asked and asked[-1] == (truth.waybill,)
        with_text = read_label(img, budget_ms=200.0, text_needed=lambda read: True)
        assert with_text.waybills == (truth.waybill,)
        assert with_text.routing_code in (None, truth.routing_code)
    # Without any barcode (damaged tier) the question never comes up and the text still reads.
    asked.clear()
    truth = random_truth(rng, routing_codes=["571-J25-03"])
    read_label(render_label(truth, rng, "damaged"), budget_ms=200.0, text_needed=not_needed)
    assert not asked
