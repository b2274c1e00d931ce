"""Image files from outside that would flood memory or block: each is a no read with its reason,
at once, in the real reader processes, the camera folder and the line screen's thumbnails; the
next parcel's image is still read. Real files, FIFOs and reader processes, real OpenCV."""
import asyncio
import contextlib
import os
import re
import sqlite3
import time

import cv2
import numpy as np
import pytest

from edge import readers
from edge.camera import FolderImages
from edge.camera_health import PROBLEM_AFTER, CameraHealth, Image
from edge.readers import UNDECODABLE, ReaderPool
from edge.state import State
from edge.web.thumbs import Thumbnails, make_thumbnail
from tests.conftest import REPO
from tests.edge.shift_runner import private_copy, run_shift
from tests.hostile_images import (CLAIM, NOT_FILES, floods, make_not_a_file, peak_rss_kb,
                                  reset_peak_rss)
from vision.image_header import OPENCV_LIMIT_VAR
from vision.image_input import BadImage
from vision.synth import random_truth, render_label

pytestmark = pytest.mark.timeout(240)
BUDGET_MS = 200.0
# A reader holds OpenCV, zxing and the text model; what one read of a label image adds is a few MB.
# 64 MB is far below the 900 MB that decoding one of the floods would take.
RSS_GROWTH_KB = 64 * 1024
FLOOD_REASON = (f"{UNDECODABLE}: {CLAIM}, more than the 50 MP a line camera sends: check the camera's "
                f"resolution/ROI setting")


def _until():
    return time.monotonic() + BUDGET_MS / 1000 + 5


@pytest.fixture
def label(tmp_path):
    rng = np.random.default_rng(20261130)
    truth = random_truth(rng, couriers=["SF"])
    ok, buf = cv2.imencode(".jpg", render_label(truth, rng, tier="clean"), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    path = tmp_path / "1.jpg"
    path.write_bytes(buf.tobytes())
    return truth, path


@contextlib.asynccontextmanager
async def started(*args, **kwargs):
    pool = ReaderPool(*args, **kwargs)
    usable, message = await pool.start()
    assert pool.running == pool.size, message
    try:
        yield pool
    finally:
        await pool.stop()


async def _all_idle(pool):
    """Both readers free again, and long enough after the last read for the next one to be hedged."""
    end = time.monotonic() + 10
    while pool._idle.qsize() < pool.running:
        assert time.monotonic() < end, "a reader was not freed"
        await asyncio.sleep(0.01)
    await asyncio.sleep(readers.HEDGE_GAP * (pool._read_s or 0) + 0.01)


async def test_pixel_floods_are_no_reads_without_the_readers_memory_and_the_next_label_is_read(tmp_path, label):
    truth, good = label
    async with started(2, hedge=True) as pool:
        assert (await pool.read(good, BUDGET_MS, _until())).waybills == (truth.waybill,)
        await _all_idle(pool)
        pids = [r.process.pid for r in pool._readers]
        for pid in pids:                          # OpenCV's own limit behind the header check, from their start
            with open(f"/proc/{pid}/environ", "rb") as fh:
                assert f"{OPENCV_LIMIT_VAR}={os.environ[OPENCV_LIMIT_VAR]}".encode() in fh.read().split(b"\0")
        before = {pid: peak_rss_kb(pid) for pid in pids}
        hedged = pool.hedged
        for tracking, (ext, data) in enumerate(floods().items(), start=2):
            path = tmp_path / f"{tracking}.{ext}"
            path.write_bytes(data)
            t0 = time.monotonic()
            read = await pool.read(path, BUDGET_MS, _until())
            assert time.monotonic() - t0 < 0.5, ext
            assert read.waybills == () and read.no_read_reason == FLOOD_REASON, ext
            await _all_idle(pool)
        assert pool.hedged - hedged == len(floods())              # both readers had each flood
        for pid in pids:
            assert peak_rss_kb(pid) - before[pid] < RSS_GROWTH_KB, (pid, before[pid], peak_rss_kb(pid))
        assert [r.process.pid for r in pool._readers] == pids     # no reader died on the way
        assert (await pool.read(good, BUDGET_MS, _until())).waybills == (truth.waybill,)


async def test_what_is_no_image_file_is_handed_on_at_once_and_refused_by_the_reader(tmp_path, label):
    truth, good = label
    folder = FolderImages(tmp_path)
    async with started(1) as pool:
        for tracking, kind in enumerate(NOT_FILES, start=10):
            path = tmp_path / f"{tracking}.jpg"
            keep = make_not_a_file(path, kind)
            try:
                # A blocking open() of the FIFO here would hold the event loop, and wait_for with it.
                t0 = time.monotonic()
                assert await asyncio.wait_for(folder.wait(tracking, 2.0), 1.0) == path, kind
                read = await pool.read(path, BUDGET_MS, _until())
                assert time.monotonic() - t0 < 0.5, kind
                assert read.no_read_reason.startswith(f"{UNDECODABLE}: ") and NOT_FILES[kind] in read.no_read_reason
            finally:
                if keep is not None:
                    keep.close()
        assert (await pool.read(good, BUDGET_MS, _until())).waybills == (truth.waybill,)


async def test_empty_cut_and_vanished_files_are_no_reads_with_their_reason(tmp_path, label):
    truth, good = label
    data = good.read_bytes()
    ok, png = cv2.imencode(".png", cv2.imread(str(good), cv2.IMREAD_GRAYSCALE))
    cases = {
        "20.jpg": (b"", "the file is empty (0 bytes)"),
        "21.jpg": (data[:40], "JPEG ends before its frame header"),
        # Cut inside its compressed data, a JPEG still decodes (the rest gray) and is read as it is.
        "23.jpg": (data[:len(data) // 8], "(the image file was incomplete: JPEG without its end marker)"),
        "24.png": (png.tobytes()[:len(png) // 2], "decoded: PNG without IEND: the upload was cut short"),
        "25.jpg": (b"%PDF-1.7 a manual saved under a camera's name", "not a JPEG, PNG, BMP or TIFF image"),
    }
    async with started(1) as pool:
        for name, (content, reason) in cases.items():
            (tmp_path / name).write_bytes(content)
            read = await pool.read(tmp_path / name, BUDGET_MS, _until())
            assert read.waybills == () and reason in read.no_read_reason, (name, read.no_read_reason)
            if name != "23.jpg":
                assert read.no_read_reason.startswith(UNDECODABLE), name
        # Found, then deleted before its reader opened it.
        (tmp_path / "26.jpg").write_bytes(data)
        path = await FolderImages(tmp_path).wait(26, 1.0)
        path.unlink()
        read = await pool.read(path, BUDGET_MS, _until())
        assert read.no_read_reason == f"{UNDECODABLE}: the file is gone (deleted or moved after it was found)"
        if os.geteuid() != 0:                             # root reads any file
            (tmp_path / "27.jpg").write_bytes(data)
            os.chmod(tmp_path / "27.jpg", 0)
            read = await pool.read(tmp_path / "27.jpg", BUDGET_MS, _until())
            assert "no permission to read it" in read.no_read_reason
        assert (await pool.read(good, BUDGET_MS, _until())).waybills == (truth.waybill,)


async def test_thumbnails_of_floods_and_pipes_are_refused_without_the_controllers_memory(tmp_path, label):
    _, good = label
    recent = []
    thumbs = Thumbnails(recent)
    try:
        for tracking, (ext, data) in enumerate(floods().items(), start=30):
            (tmp_path / f"{tracking}.{ext}").write_bytes(data)
            recent.append({"tracking": tracking, "image": str(tmp_path / f"{tracking}.{ext}")})
        os.mkfifo(tmp_path / "40.jpg")
        recent.append({"tracking": 40, "image": str(tmp_path / "40.jpg")})
        recent.append({"tracking": 1, "image": str(good)})
        if not reset_peak_rss():
            pytest.skip("this kernel does not let a process reset its peak memory (/proc/self/clear_refs)")
        start_kb = peak_rss_kb()
        for parcel in recent[:-1]:
            t0 = time.monotonic()
            assert await thumbs.get(parcel["tracking"]) is None
            assert time.monotonic() - t0 < 0.5
            why = thumbs.refused(parcel["tracking"])
            assert why is not None and parcel["image"] in why
            assert CLAIM in why or "named pipe (FIFO)" in why
        assert peak_rss_kb() - start_kb < RSS_GROWTH_KB
        small = await thumbs.get(1)
        assert cv2.imdecode(np.frombuffer(small, np.uint8), cv2.IMREAD_GRAYSCALE).shape[1] == 320
        assert thumbs.refused(1) is None
        with pytest.raises(BadImage, match=re.escape(CLAIM)):
            make_thumbnail(tmp_path / "30.jpg")
    finally:
        thumbs.close()


def test_the_cameras_fault_names_the_last_files_reason():
    health = CameraHealth("/srv/camera")
    for _ in range(PROBLEM_AFTER):
        health.seen(Image.UNDECODABLE, FLOOD_REASON)
    assert "cannot be decoded" in health.problem and "JPEG, PNG or BMP" in health.problem
    assert f"(the last: {CLAIM}, more than the 50 MP a line camera sends: check the camera's resolution/ROI " \
           f"setting)" in health.problem
    health.seen(Image.USABLE)
    for _ in range(PROBLEM_AFTER):
        health.seen(Image.UNDECODABLE)            # no reason given: the fault still says what to check
    assert "(the last" not in health.problem and "JPEG, PNG or BMP" in health.problem


# -- a shift ---------------------------------------------------------------------------------------
PARCELS = 24


def _hostile_camera_folder(folder):
    """One hostile file per parcel, kind after kind; returns tracking -> what its reason must say."""
    folder.mkdir()
    kinds = [*((ext, data) for ext, data in floods().items()),
             *((kind, None) for kind in NOT_FILES if kind != "socket"),   # a socket's path may be too long
             ("empty", b""), ("cut", b"\xff\xd8\xff\xe0\x00\x10JFIF")]
    expected = {}
    for tracking in range(1, PARCELS + 1):
        kind, data = kinds[(tracking - 1) % len(kinds)]
        path = folder / f"{tracking}.{kind if kind in floods() else 'jpg'}"
        if data is not None:
            path.write_bytes(data)
            expected[tracking] = {"empty": "the file is empty", "cut": "JPEG ends before"}.get(kind, CLAIM)
        else:
            make_not_a_file(path, kind)
            expected[tracking] = NOT_FILES[kind]
    return expected


async def _peak_rss_of_readers_once_all_decided(controller):
    while controller.stats.decided < PARCELS:
        await asyncio.sleep(0.05)
    return controller.update_state(), [peak_rss_kb(r.process.pid) for r in controller.readers._readers]


async def test_a_shift_of_hostile_camera_files_is_decided_in_time_and_stops_when_told(tmp_path):
    config = private_copy(REPO / "configs" / "county-24.toml", tmp_path)
    expected = _hostile_camera_folder(tmp_path / "camera")
    report, _, controller, (state, reader_peaks_kb) = await run_shift(
        config, PARCELS, 12000, 5, _peak_rss_of_readers_once_all_decided, "--camera", "off", "--no-label-share", "0")
    # run_shift has stopped the controller, as SIGTERM does: nothing held it.
    db = sqlite3.connect(tmp_path / "rec" / "parcels.sqlite")
    rows = db.execute("SELECT tracking, reason, no_read_reason, sent FROM parcels").fetchall()
    db.close()
    assert report["lost"] == 0 and report["late"] == 0 and report["landed"] == PARCELS
    assert all(r["actual"] == r["assigned"] for r in report["records"])      # decided in time, not by the PLC
    assert len(rows) == PARCELS
    for tracking, reason, no_read_reason, sent in rows:
        assert reason == "NO_READ" and sent == 1, tracking
        assert no_read_reason.startswith(UNDECODABLE) and expected[tracking] in no_read_reason, no_read_reason
    assert state.state == State.FAULTED and "cannot be decoded" in state.message
    assert reader_peaks_kb and max(reader_peaks_kb) < 1_000_000, reader_peaks_kb   # kB; one flood alone is 900 MB
    assert controller.readers.restarted == 0
