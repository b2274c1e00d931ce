"""The simulated camera: images rendered by idle-priority processes, cached on disk, dropped per parcel."""
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
    images = LabelImages(seed=4, cache_dir=tmp_path / "cache", workers=1)
    try:
        await images.prepare(LABELS)
        assert images.rendered == 2 and images.cached == 0
        frame = cv2.imread(str(images.ready(0)), cv2.IMREAD_GRAYSCALE)
        assert frame.shape == (1024, 1280)
        if hasattr(os, "SCHED_IDLE"):
            policy = await asyncio.get_running_loop().run_in_executor(images._pool, os.sched_getscheduler, 0)
            assert policy == os.SCHED_IDLE
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
