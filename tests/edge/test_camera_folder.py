"""The camera folder: an image is taken once its upload is whole, and the folder stays bounded
(the controller deletes all but the newest images, so a folder in RAM does not fill the PC's
memory over a shift). Real controller, simulated PLC and camera."""
import asyncio
import os
import time

import cv2
import numpy as np
import pytest

from edge import controller as controller_module
from edge.camera import FolderImages
from tests.conftest import REPO
from tests.edge.config_files import set_keys
from tests.edge.shift_runner import private_copy, run_shift
from vision.synth import random_truth, render_label

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


def test_only_the_cameras_own_names_are_deleted(tmp_path):
    """A technician's reference label or calibration image beside the camera's is kept."""
    now = time.time()
    camera = ["1.jpg", "2.JPG", "3.png", "4.tiff", "5.bmp", "6.jpeg", "7.TIF", "8.jpg"]
    others = ["label-reference.jpg", "calibration.png", "12a.jpg", "0x1F.png", "12.jpg.bak", "-3.jpg", "1 2.jpg",
              "\uff11\uff12.jpg", "12.jpg.part", ".13.jpg", "jpg"]
    for age, name in enumerate(reversed(camera + others)):
        (tmp_path / name).write_bytes(b"jpeg")
        os.utime(tmp_path / name, (now - 1000 + age, now - 1000 + age))
    os.mkfifo(tmp_path / "9.jpg")                    # no regular file: neither opened nor deleted
    os.mkdir(tmp_path / "10.jpg")
    assert FolderImages(tmp_path).prune(1) == len(camera) - 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["1.jpg", "9.jpg", "10.jpg", *others])


def _jpeg() -> bytes:
    rng = np.random.default_rng(7)
    truth = random_truth(rng)
    ok, buf = cv2.imencode(".jpg", render_label(truth, rng, "clean"))
    assert ok
    return buf.tobytes()


async def test_an_image_uploaded_into_its_name_is_taken_once_whole(tmp_path):
    data = _jpeg()
    path = tmp_path / "17.jpg"
    path.write_bytes(data[:len(data) // 2])            # the camera's upload, half way
    waiting = asyncio.create_task(FolderImages(tmp_path).wait(17, 5.0))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    with open(path, "ab") as f:
        f.write(data[len(data) // 2:])
    assert await asyncio.wait_for(waiting, 1.0) == path
    assert cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) is not None


async def test_an_upload_that_never_ends_is_taken_as_it_is_when_the_wait_is_over(tmp_path):
    data = _jpeg()
    (tmp_path / "18.jpg").write_bytes(data[:len(data) // 2])
    t0 = time.monotonic()
    assert await FolderImages(tmp_path).wait(18, 0.2) == tmp_path / "18.jpg"
    assert time.monotonic() - t0 >= 0.19


@pytest.mark.parametrize("name", ["21.JPG", "21.jpeg", "21.tif", "21.PNG"])
async def test_every_image_name_a_camera_uses_is_found(tmp_path, name):
    rng = np.random.default_rng(8)
    suffix = os.path.splitext(name)[1].lower()
    ok, buf = cv2.imencode(".jpg" if suffix == ".jpeg" else suffix, render_label(random_truth(rng), rng, "clean"))
    (tmp_path / name).write_bytes(buf.tobytes())
    images = FolderImages(tmp_path)
    assert await images.wait(21, 1.0) == tmp_path / name
    (tmp_path / name.replace("21", "22")).write_bytes(buf.tobytes())
    assert images._find(22) == tmp_path / name.replace("21", "22")
    assert images._exts[0] == os.path.splitext(name)[1]      # its next image is looked for by that name first
    (tmp_path / "23.txt").write_text("not an image")
    assert images.prune(1) == 1 and (tmp_path / "23.txt").exists()


async def test_a_file_that_is_no_image_is_taken_at_once_for_the_reader_to_refuse(tmp_path):
    (tmp_path / "19.jpg").write_bytes(b"this is not a picture at all")
    t0 = time.monotonic()
    assert await FolderImages(tmp_path).wait(19, 2.0) == tmp_path / "19.jpg"
    assert time.monotonic() - t0 < 1.0


async def test_the_controller_keeps_the_camera_folder_bounded_during_a_shift(tmp_path, monkeypatch):
    monkeypatch.setattr(controller_module, "IMAGES_PRUNE_EVERY_S", 0.2)
    config = private_copy(REPO / "configs" / "county-24.toml", tmp_path)
    config.write_text(set_keys(config.read_text(), {("camera", "keep_images"): "10"}))
    report, rows, _, _ = await run_shift(config, 40, 12000, 3)
    assert report["lost"] == 0 and report["late"] == 0 and len(rows) == 40
    left = list((tmp_path / "camera").glob("*.jpg"))
    assert 0 < len(left) <= 10
