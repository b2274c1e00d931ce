"""Plan reload: by file change, by `sortline reload` over the control socket, by SIGHUP; refusals stay visible.

The controller is the real one (real plan, router, records); its PLC link is not started, since
a reload never touches the PLC.
"""
import asyncio
import os
import re
import signal
import sqlite3
import sys

import pytest

from edge.run import build_controller
from edge.config import load_config
from edge.reload import ReloadTriggers, WatchedFiles, ask, build_line_plan, preadvice_files, socket_path
from fastpath import PlanError, text_files
from tests.conftest import REPO
from tests.edge.config_files import LINE, PLAN, edit, set_keys, write

pytestmark = pytest.mark.timeout(60)

PREADVICE = "waybill,destination\nSF1234567890123,Qicun\n"


def line_files(folder, **plan_keys):
    """The small test line, its plan with one pre-advice file, reload settings from `plan_keys`."""
    plan = PLAN + '\n[preadvice]\nfiles = ["pre.csv"]\n'
    (folder / "pre.csv").write_text(PREADVICE)
    line = set_keys(LINE, {("plan", k): v for k, v in plan_keys.items()})
    return write(folder, line, plan)


@pytest.fixture
def folder(tmp_path):
    return tmp_path.resolve()


@pytest.fixture
async def controller(folder):
    c = build_controller(load_config(line_files(folder, watch="false")))
    yield c
    c.records.close()


def actions(controller):
    controller.records.flush(5.0)        # rows are written by the records' own thread
    db = sqlite3.connect(controller.records.path)
    try:
        return db.execute("SELECT who, action, detail FROM actions ORDER BY id").fetchall()
    finally:
        db.close()


def new_version(folder, version, text=None):
    plan = folder / "line.plan.toml"
    plan.write_text(edit(text or plan.read_text(), 'version = "t1"', f'version = "{version}"'))


async def until(condition, timeout_s=10.0):
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


# -- building -------------------------------------------------------------------------------------
def test_a_plan_whose_reject_chute_is_not_the_end_chute_is_refused(folder):
    config = load_config(line_files(folder))
    (folder / "line.plan.toml").write_text(edit((folder / "line.plan.toml").read_text(), "reject = 6", "reject = 5"))
    with pytest.raises(PlanError) as caught:
        build_line_plan(config, folder / "line.plan.toml")
    assert str(caught.value) == (
        f"{folder}/line.plan.toml:9: [special] reject = 5: the line's end chute is 6 ([line] end_chute in "
        f"{folder}/line.toml). Set reject = 6: a rejected parcel rides to the end of the belt, as does every "
        "parcel the PLC rejects on its own")


def test_the_watched_files_are_the_plan_and_its_preadvice(folder):
    line_files(folder)
    assert preadvice_files(folder / "line.plan.toml") == [folder / "pre.csv"]
    files = WatchedFiles(folder / "line.plan.toml")
    before = files.signature()
    (folder / "pre.csv").write_text(PREADVICE + "SF1234567890124,Lugang\n")
    assert files.signature() != before
    assert [path for path, *_ in files.signature()] == [str(folder / "line.plan.toml"), str(folder / "pre.csv")]
    before = files.signature()
    new_version(folder, "t2")            # same length, and likely within the same tick of the file clock
    assert files.signature() != before


# -- the controller's reload ------------------------------------------------------------------------
async def test_a_valid_plan_is_swapped_in_and_logged(controller, folder):
    new_version(folder, "t2", edit((folder / "line.plan.toml").read_text(), 'code = "312-Q03-01"', 'code = "312-Q09-01"'))
    assert await controller.reload_plan(who="tester") == "t2"
    assert controller.plan.version == controller.router.plan.version == "t2"
    assert controller.plan_refused is None
    assert controller.router.decide([], "312-Q09-01").destination == "Qicun"
    assert actions(controller)[-1] == ("tester", "reload plan", "t2")


async def test_an_invalid_plan_is_refused_the_old_one_stays_and_the_refusal_is_visible(controller, folder):
    plan = folder / "line.plan.toml"
    plan.write_text(edit(plan.read_text(), 'chutes = [3]', 'chutes = [3, 9]'))
    with pytest.raises(PlanError):
        await controller.reload_plan(who="tester")
    why = (f"{plan}:21: [destinations.\"Lugang\"] chutes = 9: each chute must be a whole number from 1 to 6. "
           "This line has 6 chutes; use one of them")
    assert controller.plan_refused == f"plan {plan} refused, plan t1 stays active: {why}"
    assert controller.snapshot()["plan_refused"] == controller.plan_refused
    assert controller.plan.version == controller.router.plan.version == "t1"
    assert controller.router.decide([], "312-Q03-01").destination == "Qicun"
    assert actions(controller)[-1] == ("tester", "reload plan refused", why)


async def test_a_broken_preadvice_file_is_refused_too(controller, folder):
    (folder / "pre.csv").write_text(PREADVICE + "SF1234567890124,Nowhere\n")
    with pytest.raises(PlanError) as caught:
        await controller.reload_plan()
    assert "pre.csv:3" in str(caught.value) and "Nowhere" in str(caught.value)
    assert controller.plan.version == "t1" and controller.plan_refused.endswith(str(caught.value))



def _folder(plan):
    plan.unlink()
    plan.mkdir()


def _fifo(plan):
    plan.unlink()
    os.mkfifo(plan)


def _loop(plan):
    plan.unlink()
    plan.symlink_to(plan)                # a link to itself: open() fails, as for a file it may not read


def _too_big(plan):
    os.truncate(plan, 17_000_000)        # sparse: the size is what counts


PLAN_NOT_READ = {
    "missing": (lambda plan: plan.unlink(), "the plan file does not exist. Check the path, or copy one from "
                                            "configs/plans/"),
    "folder": (_folder, "the sort plan is a folder, not a file. Give the path of the sort plan itself, or put the "
                        "file back where a folder now is"),
    "fifo": (_fifo, "the sort plan is a named pipe, not a file. Save the sort plan as a regular file"),
    "unreadable": (_loop, "cannot read the plan file: Too many levels of symbolic links. Check the file's "
                          "permissions: the controller's user must be able to read it"),
    "too-big": (_too_big, "the sort plan is 17.0 MB, more than a sort plan may be (16 MB). "
                          + text_files.PLAN.too_big_remedy),
}


@pytest.mark.parametrize("case", list(PLAN_NOT_READ))
async def test_a_plan_that_cannot_be_read_is_refused_and_the_line_keeps_its_plan(controller, folder, case):
    make, problem = PLAN_NOT_READ[case]
    plan = folder / "line.plan.toml"
    make(plan)
    with pytest.raises(PlanError) as caught:
        await controller.reload_plan(who="tester")
    assert str(caught.value) == f"{plan}: {problem}"
    assert controller.plan_refused == f"plan {plan} refused, plan t1 stays active: {plan}: {problem}"
    assert controller.plan.version == controller.router.plan.version == "t1"
    assert controller.router.decide(["SF1234567890123"], None).destination == "Qicun"
    assert actions(controller)[-1] == ("tester", "reload plan refused", f"{plan}: {problem}")


async def test_the_controller_answers_a_reload_of_a_plan_replaced_by_a_folder(controller, folder):
    """What `sortline reload` sends once its own check passed (the plan may change in between)."""
    triggers = ReloadTriggers(controller)
    await triggers.start()
    try:
        _folder(folder / "line.plan.toml")
        answer = await asyncio.to_thread(ask, socket_path(controller.config), "reload", 30)
        assert answer == {"ok": False, "active": "t1", "message": controller.plan_refused}
        assert "line.plan.toml: the sort plan is a folder, not a file" in controller.plan_refused
        code, out, err = await sortline("reload", "--config", str(folder / "line.toml"))
        assert (code, out) == (1, "")
        assert err.endswith("the sort plan is a folder, not a file. Give the path of the sort plan itself, or put "
                            "the file back where a folder now is\nnothing was sent to the line: the active plan "
                            "stays\n")
    finally:
        await triggers.stop()


async def test_a_preadvice_file_that_is_a_named_pipe_is_refused(controller, folder):
    _fifo(folder / "pre.csv")
    with pytest.raises(PlanError) as caught:
        await controller.reload_plan()
    assert str(caught.value) == (f"{folder}/pre.csv: the pre-advice file is a named pipe, not a file. Save the "
                                 "pre-advice file as a regular file")
    assert controller.plan.version == "t1"


def test_the_preadvice_files_of_a_plan_saved_with_a_bom_are_watched(folder):
    plan = folder / "line.plan.toml"
    plan.write_bytes(b"\xef\xbb\xbf" + b'[preadvice]\nfiles = ["pre.csv"]\n\n' + PLAN.encode())
    assert preadvice_files(plan) == [folder / "pre.csv"]


def test_the_watch_never_reads_a_plan_it_would_refuse(folder):
    line_files(folder)
    files = WatchedFiles(folder / "line.plan.toml")
    before = files.signature()
    _fifo(folder / "line.plan.toml")     # a read of it would wait for a writer for ever
    assert files.signature() != before
    (folder / "line.plan.toml").unlink()
    (folder / "line.plan.toml").symlink_to("/dev/zero")
    assert files.signature() != before

# -- the triggers ------------------------------------------------------------------------------------
async def test_a_changed_plan_file_is_loaded_by_itself_and_a_broken_one_refused(folder):
    controller = build_controller(load_config(line_files(folder, watch="true", watch_interval_ms="100")))
    triggers = ReloadTriggers(controller)
    await triggers.start()
    try:
        new_version(folder, "t2")
        await until(lambda: controller.plan.version == "t2")
        plan = folder / "line.plan.toml"
        plan.write_text(edit(plan.read_text(), 'destination = "Lugang"', 'destination = "Lugan"'))
        await until(lambda: controller.plan_refused is not None)
        assert "no such destination (did you mean 'Lugang'?)" in controller.plan_refused
        assert controller.plan.version == "t2"
        refused = controller.plan_refused
        (folder / "pre.csv").write_text(PREADVICE + "SF1234567890124,Lugang\n")    # tried again: still refused
        await until(lambda: len(actions(controller)) == 3)
        assert controller.plan.version == "t2" and controller.plan_refused == refused
        plan.write_text(edit(plan.read_text(), 'destination = "Lugan"', 'destination = "Lugang"'))
        await until(lambda: controller.plan_refused is None)
        assert controller.plan.preadvice_count == 2
        done = [(who, action) for who, action, _ in actions(controller)]
        assert done == [("file change", "reload plan"), ("file change", "reload plan refused"),
                        ("file change", "reload plan refused"), ("file change", "reload plan")]
    finally:
        await triggers.stop()
        controller.records.close()


async def test_sighup_reloads_the_plan(controller, folder):
    triggers = ReloadTriggers(controller)
    await triggers.start()
    try:
        assert triggers._signal, "SIGHUP handler not installed: sending SIGHUP would end the test process"
        new_version(folder, "t2")
        os.kill(os.getpid(), signal.SIGHUP)
        await until(lambda: controller.plan.version == "t2")
        assert actions(controller)[-1] == ("signal SIGHUP", "reload plan", "t2")
    finally:
        await triggers.stop()
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL      # stopped: no longer ours


async def sortline(*args):
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "edge.cli", *args, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_sortline_reload_answers_with_the_active_plan(controller, folder):
    config = str(folder / "line.toml")
    triggers = ReloadTriggers(controller)
    await triggers.start()
    try:
        new_version(folder, "t2")
        code, out, err = await sortline("reload", "--config", config)
        assert (code, err) == (0, "")
        assert re.fullmatch(r"plan t2 is active \(was t1\): built in \d+\.\d\d s beside the parcels, "
                            r"swapped in \d+\.\d\d ms\n", out), out
        assert actions(controller)[-1] == ("technician (sortline reload)", "reload plan", "t2")
        assert await sortline("reload", "--config", config, "--status") == (0, "active plan t2\n", "")
    finally:
        await triggers.stop()
    assert not socket_path(controller.config).exists()
    code, out, err = await sortline("reload", "--config", config)
    assert (code, out) == (2, "")
    assert err.startswith(f"no controller answered on {socket_path(controller.config)} (")
    assert err.endswith(f"is `sortline run --config {config}` running on this PC?\n")


async def test_sortline_reload_reports_a_refusal_from_the_controller(controller, folder):
    triggers = ReloadTriggers(controller)
    await triggers.start()
    try:
        new_version(folder, "t2")
        (folder / "pre.csv").write_text(PREADVICE + "SF12345,Qicun,extra\n")
        code, out, err = await sortline("reload", "--config", str(folder / "line.toml"))
        assert (code, out) == (1, "")
        assert err == controller.plan_refused + "\n"
        assert err.startswith(f"plan {folder}/line.plan.toml refused, plan t1 stays active: {folder}/pre.csv:3")
        code, out, _ = await sortline("reload", "--config", str(folder / "line.toml"), "--status")
        assert out == f"active plan t1\nlast refusal: {controller.plan_refused}\n"
    finally:
        await triggers.stop()


async def test_sortline_reload_checks_the_plan_before_it_reaches_the_line(controller, folder):
    triggers = ReloadTriggers(controller)
    await triggers.start()
    try:
        plan = folder / "line.plan.toml"
        plan.write_text(edit(plan.read_text(), "reject = 6", "reject = 5"))
        code, out, err = await sortline("reload", "--config", str(folder / "line.toml"))
        assert (code, out) == (1, "")
        assert err == (f"config {folder}/line.toml has 1 error(s); the line would not start with it:\n"
                       f"  {plan}:9: [special] reject = 5: the line's end chute is 6 ([line] end_chute in "
                       f"{folder}/line.toml). Set reject = 6: a rejected parcel rides to the end of the belt, as "
                       "does every parcel the PLC rejects on its own\n"
                       "nothing was sent to the line: the active plan stays\n")
        assert actions(controller) == []
    finally:
        await triggers.stop()


async def test_a_socket_left_by_a_killed_controller_is_replaced(controller):
    path = socket_path(controller.config)
    path.parent.mkdir(parents=True, exist_ok=True)
    import socket
    left = socket.socket(socket.AF_UNIX)
    left.bind(str(path))                # bound, never listening: what a killed process leaves
    left.close()
    triggers = ReloadTriggers(controller)
    await triggers.start()
    try:
        code, out, _ = await sortline("reload", "--config", str(controller.config.path), "--status")
        assert (code, out) == (0, "active plan t1\n")
    finally:
        await triggers.stop()
