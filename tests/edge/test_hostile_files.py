"""Whatever a technician saves under a config's or a plan's name, `sortline check-config` answers.

Named pipes (a plain open() waits for a writer forever), /dev/zero behind a link (reads until the
memory is gone), folders, files far too big, UTF-16 and the BOM that Notepad and Excel write.
Each case runs the real command in its own process, with a time limit and a memory limit, so that
a fault shows as a failed test, not as a hung or swapping test machine.
"""
import codecs
import os
import resource
import subprocess
import sys

import pytest

from fastpath import text_files
from tests.conftest import REPO
from tests.edge.config_files import LINE, PLAN, edit, write

pytestmark = pytest.mark.timeout(120)

COMMAND_TIMEOUT_S = 60
MEMORY_LIMIT_BYTES = 2 << 30


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def check_config(path):
    """(exit status, stdout, stderr) of `sortline check-config path`."""
    done = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, preexec_fn=_limit_memory)
    return done.returncode, done.stdout, done.stderr


def refused_with(path, message):
    code, out, err = check_config(path)
    assert (code, out) == (1, ""), err
    assert err == (f"config {path} has 1 error(s); the line would not start with it:\n"
                   f"  {message}\n")


@pytest.fixture
def folder(tmp_path):
    return tmp_path.resolve()


def replace_with_fifo(path):
    path.unlink()
    os.mkfifo(path)


# -- the line config ----------------------------------------------------------------------------------
def test_a_config_that_is_a_named_pipe_is_refused(folder):
    config = write(folder)
    replace_with_fifo(config)
    refused_with(config, f"{config}: the line config is a named pipe, not a file. Save the line config as a "
                         "regular file")


def test_a_config_linked_to_dev_zero_is_refused(folder):
    config = folder / "line.toml"
    config.symlink_to("/dev/zero")
    refused_with(config, f"{config}: the line config is a device ({config} points to /dev/zero), not a file. "
                         "Save the line config as a regular file")


def test_a_config_of_two_megabytes_is_refused(folder):
    config = write(folder, LINE + "#" * 2_000_000 + "\n")
    refused_with(config, f"{config}: the line config is 2.0 MB, more than a line config may be (1 MB). "
                         f"{text_files.CONFIG.too_big_remedy}")


def test_a_config_with_a_bom_is_read_and_its_line_numbers_stay_right(folder):
    config = write(folder, codecs.BOM_UTF8.decode("utf-8") + LINE)
    code, out, err = check_config(config)
    assert (code, err) == (0, "") and out.startswith(f"{config}: OK\n")
    config.write_bytes(codecs.BOM_UTF8 + edit(LINE, "belt_speed_m_s = 2.0", "belt_speed_m_s = 9").encode())
    refused_with(config, f"{config}:3: [line] belt_speed_m_s = 9: out of range. Allowed: a number from 0.1 to 5 m/s")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_a_utf16_config_is_named(folder, encoding):
    config = write(folder)
    config.write_bytes(LINE.encode(encoding))
    refused_with(config, f"{config}: the line config is UTF-16 text, not UTF-8. Save it as UTF-8: in the editor's "
                         "Save As, choose the encoding UTF-8")


# -- the sort plan it names -----------------------------------------------------------------------------
def test_a_plan_that_is_a_named_pipe_is_refused(folder):
    config = write(folder)
    replace_with_fifo(folder / "line.plan.toml")
    refused_with(config, f"{folder}/line.plan.toml: the sort plan is a named pipe, not a file. Save the sort plan "
                         "as a regular file")


def test_a_plan_linked_to_dev_zero_is_refused(folder):
    config = write(folder)
    plan = folder / "line.plan.toml"
    plan.unlink()
    plan.symlink_to("/dev/zero")
    refused_with(config, f"{plan}: the sort plan is a device ({plan} points to /dev/zero), not a file. Save the "
                         "sort plan as a regular file")


def test_a_plan_replaced_by_a_folder_is_refused(folder):
    config = write(folder)
    plan = folder / "line.plan.toml"
    plan.unlink()
    plan.mkdir()
    refused_with(config, f"{plan}: the sort plan is a folder, not a file. Give the path of the sort plan itself, or "
                         "put the file back where a folder now is")


def test_a_plan_above_the_limit_is_refused_without_being_read(folder):
    config = write(folder)
    plan = folder / "line.plan.toml"
    os.truncate(plan, 17_000_000)        # sparse: nothing is written, the size is what counts
    refused_with(config, f"{plan}: the sort plan is 17.0 MB, more than a sort plan may be (16 MB). "
                         f"{text_files.PLAN.too_big_remedy}")


def test_a_plan_saved_with_a_bom_is_read(folder):
    config = write(folder, plan=codecs.BOM_UTF8.decode("utf-8") + PLAN)
    code, out, err = check_config(config)
    assert (code, err) == (0, "") and out.startswith(f"{config}: OK\n")


def test_a_utf16_plan_is_named(folder):
    config = write(folder)
    (folder / "line.plan.toml").write_bytes(PLAN.encode("utf-16"))
    refused_with(config, f"{folder}/line.plan.toml: the sort plan is UTF-16 text, not UTF-8. Save it as UTF-8: in "
                         "the editor's Save As, choose the encoding UTF-8")


# -- the plan's pre-advice files --------------------------------------------------------------------------
PREADVICE_PLAN = PLAN + '\n[preadvice]\nfiles = ["pre.csv"]\n'


@pytest.mark.parametrize("make, problem", [
    (lambda p: os.mkfifo(p), "the pre-advice file is a named pipe, not a file. Save the pre-advice file as a "
                             "regular file"),
    (lambda p: p.symlink_to("/dev/zero"), "the pre-advice file is a device ({p} points to /dev/zero), not a "
                                          "file. Save the pre-advice file as a regular file"),
    (lambda p: p.mkdir(), "the pre-advice file is a folder, not a file. Give the path of the pre-advice file "
                          "itself, or put the file back where a folder now is"),
], ids=["fifo", "dev-zero", "folder"])
def test_a_preadvice_file_that_is_not_a_file_is_refused(folder, make, problem):
    config = write(folder, plan=PREADVICE_PLAN)
    make(folder / "pre.csv")
    refused_with(config, f"{folder}/pre.csv: " + problem.format(p=folder / "pre.csv"))


def test_an_excel_csv_with_a_bom_loads(folder):
    config = write(folder, plan=PREADVICE_PLAN)
    (folder / "pre.csv").write_bytes(codecs.BOM_UTF8 + b"waybill,destination\r\nSF1234567890123,Qicun\r\n")
    code, out, err = check_config(config)
    assert (code, err) == (0, "")
    assert "1 pre-advice records" in out


# -- while the line runs ---------------------------------------------------------------------------------
async def test_a_plan_replaced_by_a_folder_or_a_pipe_is_refused_while_the_line_sorts_on(tmp_path):
    """The controller watches its plan file and runs beside the simulated PLC: a folder, then a named
    pipe saved where the plan was are refused (`sortline reload` says so too), the line keeps the
    plan it has and sorts on; the plan saved again is loaded."""
    import asyncio
    import shutil

    from tests.edge.shift_runner import private_copy, run_shift
    folder = tmp_path.resolve()
    shipped = REPO / "configs" / "plans" / "county-24.plan.toml"
    plan = folder / "county-24.plan.toml"
    shutil.copy(shipped, plan)
    shutil.copy(shipped.parent / "county-24.preadvice.csv", folder)
    config = private_copy(REPO / "configs" / "county-24.toml", folder, plan_path=plan, watch="true",
                          watch_interval_ms="200")
    good = plan.read_text()

    async def refused(controller, make, what):
        decided = controller.stats.decided
        plan.unlink()
        make(plan)
        async with asyncio.timeout(30):
            while what not in (controller.plan_refused or ""):
                await asyncio.sleep(0.05)
        reload = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge.cli", "reload", "--config", str(config), cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(reload.communicate(), COMMAND_TIMEOUT_S)
        async with asyncio.timeout(30):
            while controller.stats.decided < decided + 3:      # sorting goes on meanwhile
                await asyncio.sleep(0.05)
        answer = reload.returncode, out.decode(), err.decode(), controller.plan_refused, controller.plan.version
        (plan.rmdir if plan.is_dir() else plan.unlink)()
        plan.write_text(good)            # saved again: loaded again, the refusal is cleared
        async with asyncio.timeout(30):
            while controller.plan_refused is not None:
                await asyncio.sleep(0.05)
        return answer

    async def during(controller):
        async with asyncio.timeout(60):
            while controller.stats.decided < 3:
                await asyncio.sleep(0.05)
        as_folder = await refused(controller, lambda p: p.mkdir(), "is a folder, not a file")
        as_pipe = await refused(controller, os.mkfifo, "is a named pipe, not a file")
        plan.write_text(good.replace('version = "2026-11-28.1"', 'version = "again"'))
        async with asyncio.timeout(30):
            while controller.plan.version != "again":
                await asyncio.sleep(0.05)
        return as_folder, as_pipe

    report, rows, controller, (as_folder, as_pipe) = await run_shift(config, 40, 6000, 4, during)
    for (code, out, err, refusal, active), what in ((as_folder, "a folder"), (as_pipe, "a named pipe")):
        assert (code, out, active) == (1, "", "2026-11-28.1")
        assert f"{plan}: the sort plan is {what}, not a file" in err
        assert err.endswith("nothing was sent to the line: the active plan stays\n")
        assert refusal.startswith(f"plan {plan} refused, plan 2026-11-28.1 stays active: {plan}: the sort plan is "
                                  f"{what}, not a file")
    assert report["lost"] == 0 and report["landed"] == 40
    versions = [version for *_, version, _ in rows]
    assert len(rows) == 40 and set(versions) <= {"2026-11-28.1", "again"}
