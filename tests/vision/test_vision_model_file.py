"""A missing or corrupt text model is reported with a remedy, and barcodes are still read."""
import pytest

from vision import read_label
from vision.synth import random_truth, render_label
from vision.textmodel import runtime


@pytest.fixture
def model_path(monkeypatch, tmp_path):
    def use(path):
        monkeypatch.setenv(runtime.ENV_MODEL, str(path))
        runtime.reset()
    yield use
    monkeypatch.delenv(runtime.ENV_MODEL, raising=False)
    runtime.reset()


def _reads_barcode(rng):
    truth = random_truth(rng)
    result = read_label(render_label(truth, rng))
    assert result.waybills == (truth.waybill,) and result.sources["waybill"] == "barcode"


def test_missing_model(model_path, tmp_path, rng, caplog):
    model_path(tmp_path / "nowhere.onnx")
    ok, message = runtime.status()
    assert not ok and "missing" in message and "vision.textmodel.train" in message
    assert "barcodes only" in caplog.text
    _reads_barcode(rng)


def test_corrupt_model(model_path, tmp_path, rng):
    bad = tmp_path / "textline.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf model")
    (tmp_path / "textline.json").write_text('{"charset": "0123456789"}')
    model_path(bad)
    ok, message = runtime.status()
    assert not ok and "corrupt" in message and runtime.ENV_MODEL in message
    _reads_barcode(rng)


def test_model_without_its_charset_file(model_path, tmp_path, rng):
    bad = tmp_path / "textline.onnx"
    bad.write_bytes(b"")
    model_path(bad)
    ok, message = runtime.status()
    assert not ok and "cannot be loaded" in message
    _reads_barcode(rng)
