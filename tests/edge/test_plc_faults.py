"""What a real PLC does that the controller's own simulator never does: spare chute bits, a memory
reset that numbers parcels again under the same boot id. The PLC here is tests/edge/doc_plc.py,
written from docs/plc-interface.md alone; the controller is the real one, with its records."""
import asyncio
import contextlib
import os
import sqlite3
import sys

import pytest

from edge.run import build_controller
from edge.config import load_config
from edge.records import RecordsLocked
from tests.conftest import free_port
from tests.edge.config_files import LINE, PLAN, set_keys, write
from tests.edge.doc_plc import DocPlc
from tests.sim_plc.helpers import until

pytestmark = pytest.mark.timeout(120)


def controller_for(folder, port, plan=PLAN):
    line = set_keys(LINE, {("plc", "port"): str(port), ("camera", "folder"): f'"{folder / "camera"}"',
                           ("records", "folder"): f'"{folder / "records"}"'})
    return build_controller(load_config(write(folder, line, plan)))


@contextlib.asynccontextmanager
async def running(controller):
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    try:
        await until(lambda: controller.state.report.state.value == "running", 60.0)
        yield controller
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        controller.records.close()


async def scan_all(plc, trackings, encoder_from=1000):
    for i, tracking in enumerate(trackings):
        await plc.scan(tracking, encoder=encoder_from + 700 * i)
        await asyncio.sleep(0.03)


def rows(folder) -> list[tuple]:
    with sqlite3.connect(folder / "records" / "parcels.sqlite") as db:
        return db.execute("SELECT plc_boot, tracking, chute, sent FROM parcels ORDER BY id").fetchall()


async def test_chute_bits_for_chutes_the_line_does_not_have_stop_nothing_and_raise_an_alarm(tmp_path):
    async with DocPlc(free_port()) as plc:
        async with running(controller_for(tmp_path, plc.port)) as controller:
            await plc.chute_bits(full=[2, 100], fault=[37, 128])      # spare inputs of a 128-chute bit field
            await scan_all(plc, range(1, 21))
            await until(lambda: len(plc.assignments) == 20, 10.0)
            alarms = {a["key"]: a for a in controller.snapshot()["alarms"]}
            assert "chute_bits_unknown" in alarms and "[37, 100, 128]" in alarms["chute_bits_unknown"]["cause"]
            assert controller.stats.internal_errors == 0
            assert controller.router.chute_state(2)["full"]           # the line's own bits still count
            await plc.chute_bits()
            await asyncio.sleep(0.05)
            await scan_all(plc, [21])
            await until(lambda: len(plc.assignments) == 21, 10.0)
            assert "chute_bits_unknown" not in {a["key"] for a in controller.snapshot()["alarms"]}


async def test_a_plc_that_forgets_everything_and_numbers_again_gets_every_parcel_decided(tmp_path):
    async with DocPlc(free_port()) as plc:
        async with running(controller_for(tmp_path, plc.port)) as controller:
            await scan_all(plc, range(1, 11))
            await until(lambda: len(plc.assignments) == 10, 10.0)
            await plc.forget_everything()                       # same boot id, seq and tracking from 1
            await scan_all(plc, range(1, 11), encoder_from=50)
            await until(lambda: len(plc.assignments) == 10, 10.0)
            assert plc.refused_duplicates == 0
            assert "plc_numbers_reused" in {a["key"] for a in controller.snapshot()["alarms"]}
    kept = rows(tmp_path)
    assert len(kept) == 20 and all(sent for *_, sent in kept)     # both parcels of each number kept
    assert sorted(t for _, t, _, _ in kept) == sorted(list(range(1, 11)) * 2)


async def test_a_controller_restarted_after_the_plc_forgot_everything_decides_the_new_parcels(tmp_path):
    async with DocPlc(free_port()) as plc:
        async with running(controller_for(tmp_path, plc.port)):
            await scan_all(plc, range(1, 9))
            await until(lambda: len(plc.assignments) == 8, 10.0)
        await plc.forget_everything()
        await scan_all(plc, range(1, 9), encoder_from=77)        # while no controller runs
        async with running(controller_for(tmp_path, plc.port)) as again:
            await until(lambda: len(plc.assignments) == 8, 20.0)
            assert "plc_numbers_reused" in {a["key"] for a in again.snapshot()["alarms"]}
            assert again.stats.skipped_already_sent == 0
    assert len(rows(tmp_path)) == 16


async def test_a_controller_restart_alone_decides_nothing_twice(tmp_path):
    async with DocPlc(free_port()) as plc:
        async with running(controller_for(tmp_path, plc.port)):
            await scan_all(plc, range(1, 9))
            await until(lambda: len(plc.assignments) == 8, 10.0)
            await asyncio.sleep(0.3)                             # the ack reaches the PLC with a heartbeat
        async with running(controller_for(tmp_path, plc.port)) as again:
            await scan_all(plc, range(9, 12), encoder_from=90000)
            await until(lambda: len(plc.assignments) == 11, 20.0)
            assert "plc_numbers_reused" not in {a["key"] for a in again.snapshot()["alarms"]}
    assert plc.refused_duplicates == 0 and len(rows(tmp_path)) == 11


async def test_a_records_file_damaged_by_a_power_loss_is_set_aside_and_the_line_sorts(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "parcels.sqlite").write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 64)
    async with DocPlc(free_port()) as plc:
        async with running(controller_for(tmp_path, plc.port)) as controller:
            await scan_all(plc, range(1, 11))
            await until(lambda: len(plc.assignments) == 10, 10.0)
            alarms = {a["key"]: a for a in controller.snapshot()["alarms"]}
            assert "records_corrupt" in alarms and "parcels.corrupt-" in alarms["records_corrupt"]["cause"]
    assert len(rows(tmp_path)) == 10
    assert len(list((tmp_path / "records").glob("parcels.corrupt-*.sqlite"))) == 1


async def test_another_program_holding_the_records_lock_delays_no_parcel(tmp_path):
    async with DocPlc(free_port()) as plc:
        async with running(controller_for(tmp_path, plc.port)) as controller:
            await scan_all(plc, [1])
            await until(lambda: len(plc.assignments) == 1, 10.0)
            holder = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import sqlite3, sys, time\n"
                "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                "db.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(3)\n",
                str(tmp_path / "records" / "parcels.sqlite"), stdout=asyncio.subprocess.PIPE)
            assert await holder.stdout.readline() == b"held\n"
            await scan_all(plc, range(2, 21))
            await until(lambda: len(plc.assignments) == 20, 10.0)
            # The writer gives up waiting for the lock after its own timeout, and says so.
            await until(lambda: "records_write" in {a["key"] for a in controller.snapshot()["alarms"]}, 3.0)
            assert controller.stats.past_deadline == 0 and controller.loop_watch.longest_s < 0.2
            await holder.wait()
            await until(lambda: not controller.records.pending, 10.0)
    assert len(rows(tmp_path)) == 20 and all(sent for *_, sent in rows(tmp_path))


async def test_a_second_controller_on_the_same_records_is_refused_with_the_first_ones_pid(tmp_path):
    first = controller_for(tmp_path, free_port())
    try:
        with pytest.raises(RecordsLocked, match=f"PID {os.getpid()}"):
            controller_for(tmp_path, free_port())
    finally:
        first.records.close()
