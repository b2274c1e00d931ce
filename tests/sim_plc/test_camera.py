"""The simulated camera: images rendered by lower-priority processes on layouts, cached, dropped per parcel."""
import asyncio
import os

import cv2
import pytest

from sim_plc.camera import FolderCamera, LabelImages
from sim_plc.labels import ParcelLabel
from vision.synth import LabelTruth

pytestmark = pytest.mark.timeout(60)

LABELS = [ParcelLabel(LabelTruth("SF", "SF1234567890123", "571-J25-03"), "clean"), ParcelLabel(None, "no-label")]


async def test_images_are_rendered_in_the_background_then_served_from_the_cache(tmp_path):
    images = LabelImages(seed=4, cache_dir=tmp_path / "cache", workers=1, nice=19)
    try:
        await images.prepare(LABELS)
        assert images.rendered == 2 and images.cached == 0
        frame = cv2.imread(str(images.ready(0)), cv2.IMREAD_GRAYSCALE)
        assert frame.shape == (1024, 1280)
        assert await asyncio.get_running_loop().run_in_executor(images._pool, os.nice, 0) == 19
        assert len(list((tmp_path / "cache").glob("layout-*.npz"))) == 1     # SF's layout, kept for next time
    finally:
        images.close()
    again = LabelImages(seed=4, cache_dir=tmp_path / "cache", workers=1)
    try:
        await again.prepare(LABELS)
        assert again.rendered == 0 and again.cached == 2 and again._pool is None
        assert again.ready(0) == images.path_for(0, LABELS[0])
    finally:
        again.close()


def test_the_cache_key_follows_seed_index_and_label():
    images = LabelImages(seed=4, cache_dir=None)
    try:
        other_seed = LabelImages(seed=5, cache_dir=images.dir)
        keys = {images.path_for(0, LABELS[0]), images.path_for(1, LABELS[0]), images.path_for(0, LABELS[1]),
                other_seed.path_for(0, LABELS[0])}
        assert len(keys) == 4
        assert images.path_for(0, LABELS[0]) == images.path_for(0, ParcelLabel(LABELS[0].truth, "clean"))
    finally:
        images.close()
    assert not images.dir.exists()            # a temporary cache goes away with its images


def test_the_camera_drops_one_file_per_tracking_number(tmp_path):
    source = tmp_path / "image.jpg"
    source.write_bytes(b"\xff\xd8 not really a jpeg")
    camera = FolderCamera(tmp_path / "camera")
    camera.drop(1041, source)
    assert (tmp_path / "camera" / "1041.jpg").read_bytes() == source.read_bytes()
    assert sorted(p.name for p in (tmp_path / "camera").iterdir()) == ["1041.jpg"]
    camera.clear()
    assert not list((tmp_path / "camera").iterdir())


@pytest.mark.parametrize("tier", ["clean", "rotated"])
def test_a_parcel_drawn_on_a_layout_equals_a_full_render_up_to_noise(tier):
    """The layout shortcut must not change what the controller sees: compare with vision.synth itself.

    (The damaged tier has no such oracle: how the tear is drawn consumes random numbers depending
    on the barcode's width, so a full render of another waybill from the same seed places the
    parcel elsewhere. Its label, damage included, is still drawn by vision.synth itself.)
    """
    import numpy as np
    from sim_plc.label_render import build_layout, layout_seed, patched_frame
    from vision.synth import render_scene
    truth = LabelTruth("ZTO", "761234567890", "312-K07-22")
    layout = build_layout("ZTO", tier, 3)
    patched = patched_frame(layout, truth, tier, 3)
    full = render_scene(truth, np.random.default_rng(layout_seed("ZTO", tier, 3)), tier).image
    d = np.abs(patched.astype(int) - full.astype(int))
    assert d.mean() < 0.5 and np.percentile(d, 99.9) < 30
    assert np.abs(patched.astype(int) - layout.frame.astype(int)).max() > 100   # the label did change


def test_a_clean_parcel_on_a_layout_reads_as_its_own_waybill():
    import zxingcpp
    from sim_plc.label_render import build_layout, patched_frame
    truth = LabelTruth("SF", "SF1098765432109", "571-J25-03")
    frame = patched_frame(build_layout("SF", "clean", 0), truth, "clean", 0)
    read = {b.text for b in zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.Code128)}
    assert read == {"SF1098765432109"}
