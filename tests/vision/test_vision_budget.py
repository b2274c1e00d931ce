"""A read returns within its budget plus 5 ms, whatever the size of the image: a stage that cannot
be interrupted is started only when its worst case fits (vision/stage_cost.py, vision/deadline.py).

The images are the size of a 12-megapixel top reader's (4032 x 3024), a synthetic label drawn
large in them, handed over as the camera would: an 8-bit array, a colour array, a float array,
a JPEG file, a PNG file.
"""
import time

import numpy as np
import pytest

from vision.deadline import Deadline
from vision.stage_cost import decode_ms, zxing_ms

GRACE_MS = 5.0
W, H = 4032, 3024


@pytest.fixture(scope="module")
def big_frame():
    import cv2

    from vision import warm_up
    from vision.synth import random_truth, render_label
    warm_up()
    rng = np.random.default_rng(19)
    truth = random_truth(rng)
    frame = render_label(truth, rng, "clean")
    return truth, cv2.resize(frame, (W, H), interpolation=cv2.INTER_CUBIC)


class Timing:
    def __init__(self, wall_ms, cpu_ms):
        self.wall_ms, self.cpu_ms = wall_ms, cpu_ms

    def __repr__(self):
        return f"wall {self.wall_ms:.1f} ms, CPU {self.cpu_ms:.1f} ms"


def _timed_read(image, budget_ms):
    from vision.pipeline import read_label
    t0, c0 = time.perf_counter(), time.process_time()
    read = read_label(image, budget_ms=budget_ms)
    return read, Timing((time.perf_counter() - t0) * 1000.0, (time.process_time() - c0) * 1000.0)


def _assert_within(budget_ms, took: Timing, read):
    """The wall clock is the budget's measure on a core the reader has to itself (the line PC, CI).
    Where other work takes the core away (the wall clock runs 1.5 times the CPU time or more), no
    estimate made before a stage keeps a wall-clock budget; the read must then keep it in CPU
    time: no stage started whose estimate did not fit."""
    if took.wall_ms <= budget_ms + GRACE_MS:
        return
    shared = took.wall_ms > 1.5 * took.cpu_ms
    assert shared and took.cpu_ms <= budget_ms + GRACE_MS, f"{took} against a {budget_ms:g} ms budget: {read}"


def _encoded(frame, ext, *params):
    import cv2
    ok, buf = cv2.imencode(ext, frame, list(params))
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("budget_ms", [20.0, 40.0])
def test_a_12_megapixel_gray_frame_is_read_within_budget(big_frame, budget_ms):
    _, frame = big_frame
    # Scanning the whole 12 MP frame with zxing, as the first pass once did when the scaled-down
    # frame read nothing, is alone over these budgets.
    assert zxing_ms(frame.size) > budget_ms
    for _ in range(3):
        read, took = _timed_read(frame, budget_ms)
        _assert_within(budget_ms, took, read)


def test_a_12_megapixel_jpeg_is_decoded_at_the_scale_that_fits(big_frame):
    import cv2
    truth, frame = big_frame
    data = _encoded(frame, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90)
    budget_ms = 40.0
    whole = decode_ms("JPEG", W, H, len(data))
    assert whole > budget_ms / 2          # decoded whole, it would leave too little to read
    read, took = _timed_read(data, budget_ms)
    _assert_within(budget_ms, took, read)
    # Decoded at half scale (2016 x 1512 px), the label is still read.
    big, _ = _timed_read(data, 2000.0)
    assert big.waybills == (truth.waybill,)


def test_a_12_megapixel_png_that_cannot_be_decoded_in_time_is_refused_before_decoding(big_frame):
    _, frame = big_frame
    data = _encoded(frame, ".png")
    budget_ms = 40.0
    read, took = _timed_read(data, budget_ms)
    _assert_within(budget_ms, took, read)
    assert read.waybills == ()
    assert read.no_read_reason.startswith("time budget too short: decoding the 4032 x 3024 PNG")
    assert "raise [vision] budget_ms" in read.no_read_reason


@pytest.mark.parametrize("kind", ["color", "float"])
def test_a_12_megapixel_array_of_another_type_keeps_the_budget(big_frame, kind):
    _, frame = big_frame
    image = np.dstack([frame] * 3) if kind == "color" else frame.astype(np.float64) / 255.0
    budget_ms = 20.0
    read, took = _timed_read(image, budget_ms)
    _assert_within(budget_ms, took, read)
    if kind == "float":
        assert read.no_read_reason.startswith("time budget too short: turning the 4032 x 3024 float64 image")


def test_a_stage_is_started_only_when_its_estimate_fits_at_the_pace_of_the_read():
    deadline = Deadline(10_000.0)
    assert deadline.pace == 1.0
    assert deadline.fits(9_000.0) and not deadline.fits(10_001.0)
    # A stage that took at least twice its estimate: the next ones are expected to as well.
    with deadline.timed(5.0):
        time.sleep(0.010)
    pace = deadline.pace
    assert pace >= 1.9
    left = deadline.remaining_ms()
    assert not deadline.fits(1.01 * left / pace)
    assert deadline.fits(0.5 * left / pace)


def test_after_warm_up_the_first_label_pays_for_no_loading():
    """The courier rules took 0.2 s to build on the first number read, inside that read's budget:
    warm_up loads them (and the decoders) before the first parcel. Run in a fresh process."""
    import json
    import os
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    image = os.path.join(here, "real_labels", "debon-specimen-2.jpg")
    script = (
        "import json, time, cv2\n"
        "cv2.setNumThreads(1)\n"
        "from vision import warm_up\n"
        "from vision.pipeline import read_label\n"
        "warm_up()\n"
        "c = time.process_time()\n"
        f"read = read_label({image!r}, budget_ms=40.0)\n"
        "print(json.dumps({'cpu_ms': (time.process_time() - c) * 1000, 'wall_ms': read.elapsed_ms}))\n"
    )
    repo = os.path.dirname(os.path.dirname(here))
    out = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    took = json.loads(out.stdout.strip().splitlines()[-1])
    _assert_within(40.0, Timing(took["wall_ms"], took["cpu_ms"]), took)
