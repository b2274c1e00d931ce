"""A printed number read with a character lost is not taken (vision/unread_ink.py, fusion)."""
import numpy as np
import pytest

from vision.fusion import TextHit, fuse
from vision.textlines import line_input
from vision.unread_ink import characters_skipped, characters_unread, ink_span

# The one wrong waybill of `sortline bench vision` at 040dc81 (docs/results/
# vision-2026-12-07-040dc81-misreads.jsonl): damaged tier, frame 3890 of seed 20251128. Both
# printed copies of 9945158323127 read as 945158323127 (the first 9 lost), a number of the
# 12-digit shape five couriers share, taken from the text alone at confidence 0.997.
BENCH_SEED, BENCH_TIER, BENCH_INDEX = 20_251_128, "damaged", 3890
PRINTED, MISREAD = "9945158323127", "945158323127"


@pytest.fixture(scope="module")
def model():
    from vision.textmodel import runtime
    m = runtime.load()
    if m is None:
        pytest.fail("text model missing: vision/textmodel/textline.onnx must ship with the source")
    return m


@pytest.fixture
def bench_routing_shapes():
    from vision import routing_code
    from vision.synth import ROUTING_SHAPES
    routing_code.use_routing_shapes(ROUTING_SHAPES)
    yield
    routing_code.use_routing_shapes(None)


def _bench_frame():
    from vision.bench.tiers import frame
    truth, image = frame(BENCH_SEED, BENCH_TIER, BENCH_INDEX)
    assert truth.waybill == PRINTED, "the generator no longer draws the benchmark's frame 3890 as it did at 040dc81"
    return image


def test_the_benchmarks_wrong_waybill_is_refused(model, bench_routing_shapes):
    from vision.pipeline import read_label
    read = read_label(_bench_frame(), budget_ms=2000)
    assert MISREAD not in read.waybills
    assert read.waybills in ((), (PRINTED,))
    # What the label tells otherwise is still read.
    assert read.routing_code == "095-494-00-53"


def test_the_lines_that_lost_the_digit_are_named(model, bench_routing_shapes):
    from vision.deadline import Deadline
    from vision.textread import read_text
    hits = read_text(_bench_frame(), Deadline(2000), frame_rows_only=True).hits
    doubted = [h for h in hits if h.kind == "waybill_line" and h.text == MISREAD]
    assert doubted and all("ink of 1 character more than read" in h.why for h in doubted)
    assert not [h for h in hits if h.kind == "waybill" and h.text == MISREAD]
    read = fuse([], hits, 1.0)
    assert MISREAD not in read.waybills


def _printed_line(text: str, font_path: str, size: int = 30) -> np.ndarray:
    """A text-model input of `text` printed in `font_path`, as the line finder cuts it."""
    from PIL import Image, ImageDraw

    from vision.synth import fonts
    img = Image.new("L", (40 + size * len(text), 3 * size), 245)
    draw = ImageDraw.Draw(img)
    draw.text((20, size), text, font=fonts.font(font_path, size), fill=20)
    label = np.asarray(img)
    ys, xs = np.nonzero(label < 128)
    return line_input(label, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))


@pytest.mark.parametrize("font", ["MONO_BOLD", "SANS_BOLD"])
def test_a_right_reading_leaves_no_ink_unread_and_one_without_its_first_digit_does(model, font):
    from vision.synth import fonts
    line = _printed_line(PRINTED, getattr(fonts, font))
    columns: list = []
    (text, _), = model.read(line[None], columns=columns)
    assert text == PRINTED
    at = columns[0]
    assert len(at) == len(PRINTED)
    assert characters_unread(line, at, len(PRINTED)) == 0
    # The same ink with the first or the last character not emitted: the reading the model gave
    # on the benchmark's frame, and its mirror.
    assert characters_unread(line, at[1:], len(PRINTED) - 1) == 1
    assert characters_unread(line, at[:-1], len(PRINTED) - 1) == 1
    # A digit lost inside the number leaves the ink's ends covered, and a step of two pitches.
    assert characters_skipped(at, PRINTED) == 0
    inside = at[:7] + at[8:]
    assert characters_unread(line, inside, len(PRINTED) - 1) == 0
    assert characters_skipped(inside, PRINTED[:7] + PRINTED[8:]) == 1


def test_too_few_characters_tell_no_pitch():
    line = np.ones((32, 256), np.float32)
    assert ink_span(line, (3, 6, 9)) is None
    assert characters_unread(line, (3, 6, 9), 3) == 0


def test_a_line_of_a_number_with_a_character_unread_vetoes_every_reading_of_it():
    why = "its line holds ink of 1 character more than read"
    hits = [TextHit("waybill", MISREAD, 0.99), TextHit("waybill_line", MISREAD, 0.97, why)]
    read = fuse([], hits, 1.0)
    assert read.waybills == ()
    assert f"printed number {MISREAD} not taken: {why}" in read.no_read_reason


def test_a_printed_number_near_a_symbol_of_no_waybill_shape_is_a_no_read():
    # 9945158323127 is a shape the default rules know; a symbol the bars hold that is not (an
    # unknown courier's) still says the printed number, a digit shorter, is misread.
    from vision.waybill import check_waybill
    symbol = "X" + PRINTED
    assert not check_waybill(symbol).valid and check_waybill(MISREAD).valid
    read = fuse([symbol], [TextHit("waybill", MISREAD, 0.99)], 1.0)
    assert read.waybills == () and "disagree" in read.no_read_reason
