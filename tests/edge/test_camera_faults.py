"""A silent camera and a camera sending files that are not images: every parcel is still decided
in time and recorded with its reason, and the line shows a fault that names the camera's folder.
Real controller and label readers, the simulated PLC in its own process."""
import asyncio
import sqlite3

import pytest

from drivers.regmap import LineState
from edge.camera_health import PROBLEM_AFTER, CameraHealth, Image
from edge.state import State, derive
from edge.web.live import remedy_key
from tests.conftest import REPO
from tests.edge.shift_runner import private_copy, run_shift

pytestmark = pytest.mark.timeout(240)
PARCELS = 24


def test_a_parcel_without_an_image_is_no_fault_a_run_of_them_is():
    health = CameraHealth("/srv/camera")
    for _ in range(PROBLEM_AFTER - 1):
        health.seen(Image.MISSING)
    assert health.problem is None
    health.seen(Image.MISSING)
    assert "camera silent" in health.problem and "/srv/camera" in health.problem
    health.seen(Image.USABLE)
    assert health.problem is None


def test_a_run_is_one_kind_of_trouble():
    health = CameraHealth("/srv/camera")
    for i in range(2 * PROBLEM_AFTER):
        health.seen(Image.MISSING if i % 2 else Image.UNDECODABLE)
    assert health.problem is None                       # lost uploads here and there: parcel by parcel
    for _ in range(PROBLEM_AFTER):
        health.seen(Image.UNDECODABLE)
    assert "cannot be decoded" in health.problem and "JPEG, PNG or BMP" in health.problem


def test_a_camera_problem_is_a_fault_while_the_belt_runs_only():
    from types import SimpleNamespace
    link = SimpleNamespace(connected=True)
    state, message = derive(booted=True, link_status=link, link_address="plc", line_state=LineState.RUNNING,
                            has_run=True, records_error=None, camera_problem="camera silent: ...")
    assert (state, message) == (State.FAULTED, "camera silent: ...")
    assert remedy_key(state.value, LineState.RUNNING, None, "camera silent: ...") == "camera"
    state, _ = derive(booted=True, link_status=link, link_address="plc", line_state=LineState.STOPPED,
                      has_run=True, records_error=None, camera_problem="camera silent: ...")
    assert state == State.PAUSED


async def _state_once_all_decided(controller):
    while controller.stats.decided < PARCELS:
        await asyncio.sleep(0.05)
    report = controller.update_state()
    return report, {a.key: a for a in controller.alarms.active()}


async def _shift(tmp_path, garbage: bytes | None):
    config = private_copy(REPO / "configs" / "county-24.toml", tmp_path)
    if garbage is not None:
        (tmp_path / "camera").mkdir()
        for tracking in range(1, PARCELS + 1):
            (tmp_path / "camera" / f"{tracking}.jpg").write_bytes(garbage)
    report, rows, controller, (state, alarms) = await run_shift(config, PARCELS, 12000, 5, _state_once_all_decided,
                                                                "--camera", "off", "--no-label-share", "0")
    db = sqlite3.connect(tmp_path / "rec" / "parcels.sqlite")
    reasons = db.execute("SELECT reason, no_read_reason, sent FROM parcels").fetchall()
    db.close()
    assert report["lost"] == 0 and report["late"] == 0 and report["landed"] == PARCELS
    assert len(reasons) == PARCELS and all(r[0] == "NO_READ" and r[2] == 1 for r in reasons)
    assert all(r["actual"] == r["assigned"] for r in report["records"])      # decided in time, not by the PLC
    assert "camera" in alarms and alarms["camera"].remedy            # on the screen's alarm list too
    return reasons, state


async def test_a_silent_camera_sends_every_parcel_to_no_read_in_time_and_says_so(tmp_path):
    reasons, state = await _shift(tmp_path, garbage=None)
    assert all("no image from the camera in time" in r[1] for r in reasons)
    assert state.state == State.FAULTED
    assert "camera silent" in state.message and str(tmp_path / "camera") in state.message


async def test_files_that_are_not_images_are_no_reads_with_their_reason_and_a_fault(tmp_path):
    reasons, state = await _shift(tmp_path, garbage=b"\xff\xd8\xff\xe0 not a JPEG after all" * 10)
    assert all(r[1].startswith("the camera's image file cannot be decoded") for r in reasons)
    assert state.state == State.FAULTED and "cannot be decoded" in state.message
