"""The reader on the real e-waybill images kept in tests/vision/real_labels (see SOURCES.md there).

The floors are the figures the reader reaches on these images today with the built-in courier
formats (docs/vision.md, "Real labels, side by side"): a change that reads fewer fails here, one
that reads more should raise the floor. No wrong waybill and no wrong routing code is allowed.
"""
import os
import re
import shutil

import pytest

from vision.bench.peers import (Code128StageEngine, ReaderEngine, TruthError, load_truth, run,
                                SHIPPED_BUDGET_MS, GENEROUS_BUDGET_MS)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "real_labels")
IMAGE_EXTS = (".jpg", ".jpeg", ".png")

# name: (waybills read at least, routing codes read at least), of 6 images
FLOORS = {
    f"reader_{SHIPPED_BUDGET_MS:g}ms": (3, 0),
    f"reader_{GENEROUS_BUDGET_MS:g}ms": (3, 0),
    f"code128_{GENEROUS_BUDGET_MS:g}ms": (5, None),
}


def _images():
    return sorted(f for f in os.listdir(ROOT) if f.lower().endswith(IMAGE_EXTS))


def _sections() -> dict:
    """SOURCES.md: the text under each `### FILE` heading."""
    with open(os.path.join(ROOT, "SOURCES.md"), encoding="utf-8") as fh:
        parts = re.split(r"^### +(\S+)\s*$", fh.read(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_image_has_a_source_and_a_licence():
    sections = _sections()
    for image in _images():
        assert image in sections, f"{image}: no `### {image}` section in real_labels/SOURCES.md"
        text = sections[image]
        assert re.search(r"^- Source: \S+", text, re.M), f"{image}: no `- Source:` line in SOURCES.md"
        assert re.search(r"^- Licence: \S+", text, re.M), f"{image}: no `- Licence:` line in SOURCES.md"
    assert not set(sections) - set(_images()), "SOURCES.md names images that are not in real_labels/"


def test_every_image_has_a_truth_row():
    truths = load_truth(ROOT)
    assert sorted(os.path.basename(t.path) for t in truths) == _images()
    assert all(t.waybill for t in truths)


def test_a_new_image_without_truth_is_refused(tmp_path):
    shutil.copytree(ROOT, tmp_path / "labels")
    shutil.copy(tmp_path / "labels" / "zto-specimen.png", tmp_path / "labels" / "unlisted.png")
    with pytest.raises(TruthError, match="no row for unlisted.png"):
        load_truth(str(tmp_path / "labels"))


@pytest.fixture(scope="module")
def report():
    import cv2
    cv2.setNumThreads(1)
    engines = {
        f"reader_{SHIPPED_BUDGET_MS:g}ms": ReaderEngine(SHIPPED_BUDGET_MS),
        f"reader_{GENEROUS_BUDGET_MS:g}ms": ReaderEngine(GENEROUS_BUDGET_MS),
        f"code128_{GENEROUS_BUDGET_MS:g}ms": Code128StageEngine(GENEROUS_BUDGET_MS),
    }
    return run(ROOT, engines)


@pytest.mark.parametrize("engine", sorted(FLOORS))
def test_reader_keeps_its_floor_and_reads_nothing_wrong(report, engine):
    summary = report["engines"][engine]
    waybills, routing = FLOORS[engine]
    misses = [row["image"] for row in report["rows"] if row["engines"][engine]["waybill"] != "right"]
    assert summary["waybill_read"] >= waybills, f"{engine}: waybill read on fewer images; missed {misses}"
    assert summary["waybill_wrong"] == 0 and summary["waybill_multi"] == 0, report["rows"]
    if routing is not None:
        assert summary["routing_read"] >= routing
        assert summary["routing_wrong"] == 0, report["rows"]
