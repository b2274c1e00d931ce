"""The camera folder stays bounded: the controller deletes all but the newest images, so a folder
in RAM does not fill the PC's memory over a shift. Real controller, simulated PLC and camera."""
import os
import time

import pytest

from edge import controller as controller_module
from edge.camera import FolderImages
from tests.conftest import REPO
from tests.edge.config_files import set_keys
from tests.edge.shift_runner import private_copy, run_shift

pytestmark = pytest.mark.timeout(240)


def test_all_but_the_newest_images_are_deleted(tmp_path):
    now = time.time()
    for i in range(30):
        path = tmp_path / f"{i + 1}.jpg"
        path.write_bytes(b"jpeg")
        os.utime(path, (now - 100 + i, now - 100 + i))
    (tmp_path / "notes.txt").write_text("not an image: left alone")
    assert FolderImages(tmp_path).prune(10) == 20
    assert sorted(int(p.stem) for p in tmp_path.glob("*.jpg")) == list(range(21, 31))
    assert (tmp_path / "notes.txt").exists()
    assert FolderImages(tmp_path).prune(10) == 0
    assert FolderImages(tmp_path / "not-yet").prune(10) == 0


async def test_the_controller_keeps_the_camera_folder_bounded_during_a_shift(tmp_path, monkeypatch):
    monkeypatch.setattr(controller_module, "IMAGES_PRUNE_EVERY_S", 0.2)
    config = private_copy(REPO / "configs" / "county-24.toml", tmp_path)
    config.write_text(set_keys(config.read_text(), {("camera", "keep_images"): "10"}))
    report, rows, _, _ = await run_shift(config, 40, 12000, 3)
    assert report["lost"] == 0 and report["late"] == 0 and len(rows) == 40
    left = list((tmp_path / "camera").glob("*.jpg"))
    assert 0 < len(left) <= 10
