"""A routing code is taken only when its line, drawn wider, still reads with the same digits."""
import numpy as np
import pytest

from vision.deadline import Deadline
from vision.fusion import ROUTING_MIN_CONFIDENCE, TextHit
from vision.textlines import INPUT_W, line_input
from vision.textread import DIGIT_LOOKALIKES, RECHECK_WIDEN, _recheck_routing, digits_turned_letters


def test_a_digit_read_as_the_letter_it_resembles_is_a_turn():
    assert digits_turned_letters("763-044-22", "763-O44-22")
    assert digits_turned_letters("763-044-22", "763-D44-2Z")
    assert digits_turned_letters("318-409-22-05", "318-4O9-22-O5")


def test_other_differences_are_not_a_turn():
    assert not digits_turned_letters("763-044-22", "763-044-22")    # the same reading
    assert not digits_turned_letters("763-044-22", "763-A44-22")    # A resembles no digit
    assert not digits_turned_letters("763-O44-22", "763-044-22")    # a letter read as a digit
    assert not digits_turned_letters("763-044-22", "763-O44-2")     # a character lost
    assert not digits_turned_letters("763-044-22", "")


def test_the_letters_checked_are_those_the_model_was_trained_to_tell_apart():
    from vision.textmodel.data import LOOKALIKES
    assert set("".join(DIGIT_LOOKALIKES.values())) == set(LOOKALIKES)


def test_a_widened_cut_draws_the_line_wider_by_that_factor():
    label = np.full((200, 600), 230, np.uint8)
    label[80:120, 100:300] = 20
    box = (100, 80, 300, 120)
    widths = []
    for widen in (1.0, RECHECK_WIDEN):
        cut = line_input(label, box, widen=widen)
        widths.append(int((cut.min(axis=0) < 0.5).sum()))
    assert widths[0] < INPUT_W / 2
    assert widths[1] / widths[0] == pytest.approx(RECHECK_WIDEN, abs=0.03)


def test_without_time_to_read_it_again_a_code_is_read_but_not_taken():
    flat = np.full((100, 400), 230, np.uint8)
    hit = TextHit("routing_code", "763-044-22", 0.9999)
    notes = []
    # The model is never called: no time is left for it.
    hits = _recheck_routing(None, flat, [((10, 10, 300, 70), hit)], Deadline(0.0), notes)
    assert hits == [TextHit("routing_line", "763-044-22", 0.9999, "no time left to read it again wider")]
    assert notes == ["time budget spent before the routing code was read again"]


def test_codes_fusion_would_not_take_and_waybills_are_not_read_again():
    flat = np.full((100, 400), 230, np.uint8)
    found = [((10, 10, 300, 70), TextHit("routing_code", "763-044-22", ROUTING_MIN_CONFIDENCE - 0.01)),
             ((10, 80, 300, 95), TextHit("waybill", "SF1234567890123", 0.9999))]
    notes = []
    assert _recheck_routing(None, flat, found, Deadline(0.0), notes) == [h for _, h in found]
    assert notes == []


def _lookalike_frame(i: int):
    """Frame i of `sortline bench vision --seed 779 --tiers noisy --lookalikes`."""
    from vision.bench.tiers import LOOKALIKE_LETTERS, frame
    return frame(779, "noisy", i, lookalike_letters=LOOKALIKE_LETTERS)


@pytest.fixture
def recheck_widen():
    from vision import textread
    before = textread.RECHECK_WIDEN
    yield lambda widen: setattr(textread, "RECHECK_WIDEN", widen)
    textread.RECHECK_WIDEN = before


@pytest.mark.skipif(not __import__("vision.textmodel.runtime", fromlist=["status"]).status()[0],
                    reason="text model unavailable")
@pytest.mark.parametrize("frame,misread", [(151, "359-042-85"), (10, "176-084-55")])
def test_an_o_read_as_0_is_not_taken_once_read_wider(frame, misread, recheck_widen):
    from vision import read_label
    truth, img = _lookalike_frame(frame)
    recheck_widen(None)
    once = read_label(img, budget_ms=1000)
    assert once.routing_code == misread and once.routing_confidence >= ROUTING_MIN_CONFIDENCE
    recheck_widen(RECHECK_WIDEN)
    rechecked = read_label(img, budget_ms=1000)
    assert rechecked.routing_code is None
    assert rechecked.routing_note == (f"{misread} not taken: reads {truth.routing_code} drawn "
                                      f"{RECHECK_WIDEN:g} times as wide (a digit or a letter?)")
    assert rechecked.waybills == (truth.waybill,)    # the rest of the read is untouched


@pytest.mark.skipif(not __import__("vision.textmodel.runtime", fromlist=["status"]).status()[0],
                    reason="text model unavailable")
def test_codes_that_read_the_same_wider_are_still_taken():
    from vision import read_label
    right = 0
    for frame in range(12):
        truth, img = _lookalike_frame(frame)
        read = read_label(img, budget_ms=1000)
        assert read.routing_code in (None, truth.routing_code), (frame, truth.routing_code, read.routing_code)
        right += read.routing_code == truth.routing_code
    assert right >= 7, right
