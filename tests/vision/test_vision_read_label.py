import os
import numpy as np
import pytest

from vision import LabelRead, read_label
from vision.synth import random_truth, render_label


def test_clean_labels_read_by_barcode(rng):
    for _ in range(20):
        truth = random_truth(rng)
        # 1 s: on a machine busy with other work a 40 ms read starts no stage that will not fit.
        result = read_label(render_label(truth, rng, tier="clean"), budget_ms=1000)
        assert isinstance(result, LabelRead)
        assert result.waybills == (truth.waybill,), result
        assert result.courier == truth.courier
        assert result.sources["waybill"] in ("barcode", "barcode+text")
        assert result.no_read_reason is None


def test_two_labels_are_a_multi_read(rng):
    a, b = random_truth(rng), random_truth(rng)
    img = np.concatenate([render_label(a, rng), render_label(b, rng)], axis=1)
    result = read_label(img, budget_ms=500)
    assert result.waybills == tuple(sorted({a.waybill, b.waybill}))
    assert result.is_multi_read


def test_blank_frame_is_a_no_read_with_reason():
    result = read_label(np.full((1024, 1280), 128, np.uint8))
    assert result.waybills == () and result.routing_code is None
    assert result.no_read_reason


@pytest.mark.parametrize("bad", [
    b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"not an image at all", np.zeros((0, 0)),
    np.zeros((5, 5), np.uint8), np.zeros((64, 64, 7), np.uint8), np.zeros((8, 8, 8, 8)),
    np.array([["a", "b"]] * 20), "/nonexistent/frame.png", 12345, None,
    np.full((300, 300), np.nan, np.float64),
])
def test_bad_input_is_a_no_read_never_an_exception(bad):
    result = read_label(bad)
    assert result.waybills == ()
    assert result.no_read_reason


def test_truncated_encoded_frame(rng, tmp_path):
    import cv2
    ok, png = cv2.imencode(".png", render_label(random_truth(rng), rng))
    path = tmp_path / "cut.png"
    path.write_bytes(png.tobytes()[: len(png) // 3])
    result = read_label(str(path))
    assert result.waybills == () and result.no_read_reason


@pytest.mark.parametrize("shape", [(1024, 1280, 3), (1024, 1280, 4), (1024, 1280, 1)])
def test_channel_counts_and_dtypes(rng, shape):
    truth = random_truth(rng)
    gray = render_label(truth, rng)
    img = np.repeat(gray[:, :, None], shape[2], axis=2)
    assert read_label(img, budget_ms=1000).waybills == (truth.waybill,)
    assert read_label(gray.astype(np.float32) / 255.0, budget_ms=1000).waybills == (truth.waybill,)
    assert read_label(gray.astype(np.uint16) * 257, budget_ms=1000).waybills == (truth.waybill,)


def test_budget_is_respected_roughly(rng):
    img = render_label(random_truth(rng), rng, tier="damaged")
    result = read_label(img, budget_ms=1.0)
    assert result.elapsed_ms < 60


def test_a_receipt_stub_misread_along_two_scan_lines_does_not_count():
    """On this label's flattened copy zxing reads the small receipt-stub barcode wrongly along two
    adjacent scan lines (a Code 128 check symbol lets a few such readings through); a reading
    that spans under 3 px of the symbol's height and is not repeated is dropped."""
    from vision import barcode, labelfind
    rng = np.random.default_rng([20251128, 0, 830])
    truth = random_truth(rng)
    img = render_label(truth, rng, "clean")
    flat = labelfind.warp_label(img, labelfind.orientations(labelfind.find_labels(img)[0])[0])
    assert {h.text for h in barcode.zxing_code128(flat, upright=True)} == {truth.waybill}
    read = read_label(img, budget_ms=200.0)
    assert read.waybills == (truth.waybill,), read


def test_a_misread_beside_a_longer_reading_of_the_same_bars_does_not_count():
    """A camera frame (sim, JD label upside down) where zxing reads the small top barcode wrongly
    along two scan lines 3 px apart, and rightly over 40 px of its height just below: one symbol
    cannot carry two texts, so the shorter reading goes and the parcel is not a multi read."""
    import cv2
    from vision import barcode
    path = os.path.join(os.path.dirname(__file__), "artifacts", "jd-misread-beside-its-symbol.jpg")
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    assert {h.text for h in barcode.zxing_code128(img[:512], rows_only=True)} == {"JDX277329110954"}
    read = read_label(img, budget_ms=200.0)
    assert read.waybills == ("JDX277329110954",), read


def test_when_text_is_read_only_if_needed_a_label_across_the_frame_reads_without_the_label_pass(monkeypatch):
    """In the controller's when-needed mode the barcode usually answers alone: the whole frame is
    scanned at once (rows and columns), and a symbol standing across it is read without finding
    and flattening the label."""
    from vision import pipeline
    flattened = []
    real_read_text = pipeline.read_text
    monkeypatch.setattr(pipeline, "read_text", lambda *a, **k: flattened.append(1) or real_read_text(*a, **k))
    rng = np.random.default_rng(20261129)
    for _ in range(4):
        truth = random_truth(rng)
        across = np.ascontiguousarray(np.rot90(render_label(truth, rng, "clean")))
        read = read_label(across, budget_ms=200.0, text_needed=lambda read: False)
        assert read.waybills == (truth.waybill,) and read.sources["waybill"] == "barcode"
    assert not flattened
    # Text read on every label: rows only first, the label pass reads the symbol across the frame.
    truth = random_truth(rng)
    read = read_label(np.ascontiguousarray(np.rot90(render_label(truth, rng, "clean"))), budget_ms=200.0)
    assert read.waybills == (truth.waybill,) and flattened
