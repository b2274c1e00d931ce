"""Label reader processes: real readers (OpenCV, zxing-cpp, the ONNX model) behind a pipe."""
import asyncio
import contextlib
import os
import signal
import time

import cv2
import numpy as np
import pytest

from edge import readers
from edge.readers import ReaderPool
from fastpath.couriers import CourierTable, compile_format
from vision.synth import random_truth, render_label
from vision.synth.barcode_art import code128_image

BUDGET_MS = 200.0


def _jpeg(path, img):
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def _until(seconds=BUDGET_MS / 1000 + 5):
    return time.monotonic() + seconds


@contextlib.asynccontextmanager
async def started(*args, **kwargs):
    pool = ReaderPool(*args, **kwargs)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.stop()


async def _wait_running(pool, n, timeout_s=60):
    end = time.monotonic() + timeout_s
    while pool.running < n:
        assert time.monotonic() < end, "the reader was not started again"
        await asyncio.sleep(0.05)


@pytest.fixture
def label(tmp_path):
    rng = np.random.default_rng(20261129)
    truth = random_truth(rng, couriers=["SF"])
    return truth, _jpeg(tmp_path / "1.jpg", render_label(truth, rng, tier="clean"))


async def test_a_reader_asks_once_the_barcode_is_read_and_reads_text_only_when_told(label):
    truth, path = label
    asked, needed = [], [False]

    def text_needed(read):
        asked.append(read)
        return needed[0]
    pool = ReaderPool(1, text_needed=text_needed)
    usable, message = await pool.start()
    try:
        assert usable, message
        barcode_only = await pool.read(path, BUDGET_MS, _until())
        assert barcode_only.waybills == (truth.waybill,)
        assert barcode_only.routing_code is None          # the routing code is printed text, not read
        assert asked and asked[0].waybills == (truth.waybill,)
        # The parcel went on with the read it was asked about, not after the reader's "done".
        assert barcode_only is asked[0]

        needed[0] = True
        both = await pool.read(path, BUDGET_MS, _until())
        assert both.waybills == (truth.waybill,)
        assert both.routing_code == truth.routing_code
    finally:
        await pool.stop()
    assert pool.running == 0


async def test_unreadable_files_are_no_reads_with_a_reason(tmp_path):
    junk = tmp_path / "2.jpg"
    junk.write_bytes(b"\xff\xd8 this is not a JPEG")
    pool = ReaderPool(1)
    await pool.start()
    try:
        for path in (junk, tmp_path / "missing.jpg"):
            read = await pool.read(path, BUDGET_MS, _until())
            assert read.waybills == () and "cannot be decoded" in read.no_read_reason
    finally:
        await pool.stop()


async def test_a_reader_that_dies_mid_read_costs_that_read_only_and_is_started_again(label):
    truth, path = label
    pool = ReaderPool(1, text_needed=lambda read: True)
    await pool.start()
    try:
        victim = pool._readers[0].process

        def kill_then_answer(read):
            os.kill(victim.pid, signal.SIGKILL)
            return True
        pool._text_needed = kill_then_answer
        lost = await pool.read(path, BUDGET_MS, _until())
        assert lost.waybills == ()
        assert "label reader process ended" in lost.no_read_reason and "-9" in lost.no_read_reason

        pool._text_needed = lambda read: True
        await _wait_running(pool, 1)
        assert pool.restarted == 1 and pool._readers[0].process.pid != victim.pid
        again = await pool.read(path, BUDGET_MS, _until())
        assert again.waybills == (truth.waybill,)
    finally:
        await pool.stop()


async def test_an_idle_reader_reads_the_same_image_and_the_first_answer_counts(label):
    truth, path = label
    asked = []
    async with started(2, text_needed=lambda read: asked.append(read) or True, hedge=True) as pool:
        read = await pool.read(path, BUDGET_MS, _until())
        assert read.waybills == (truth.waybill,) and read.routing_code == truth.routing_code
        assert pool.hedged == 1
        end = time.monotonic() + 5
        while pool._idle.qsize() < 2:                        # the other answer frees its reader too
            assert time.monotonic() < end, "the hedging reader was not freed"
            await asyncio.sleep(0.01)
        assert len(asked) == 2                               # both read the barcode and asked


async def test_a_hedged_read_survives_one_of_its_readers_dying(label):
    truth, path = label
    async with started(2, hedge=True) as pool:
        victim = pool._readers[0].process

        def kill_one(read):
            if victim.is_alive():
                os.kill(victim.pid, signal.SIGKILL)
            return True
        pool._text_needed = kill_one
        read = await pool.read(path, BUDGET_MS, _until())
        assert read.waybills == (truth.waybill,), read.no_read_reason    # the twin's answer
        await _wait_running(pool, 2)
        assert pool.restarted == 1


async def test_no_hedge_while_parcels_come_faster_than_a_few_read_times(label):
    truth, path = label
    async with started(2, hedge=True) as pool:
        for _ in range(2):                                    # back to back: the second is not hedged
            assert (await pool.read(path, BUDGET_MS, _until())).waybills == (truth.waybill,)
        assert pool.hedged == 1
        await asyncio.sleep(readers.HEDGE_GAP * pool._read_s + 0.05)
        while pool._idle.qsize() < 2:
            await asyncio.sleep(0.01)
        assert (await pool.read(path, BUDGET_MS, _until())).waybills == (truth.waybill,)
        assert pool.hedged == 2                               # a parcel after a pause is


async def test_no_hedge_without_an_idle_reader(label):
    truth, path = label
    async with started(1, hedge=True) as pool:
        assert (await pool.read(path, BUDGET_MS, _until())).waybills == (truth.waybill,)
        assert pool.hedged == 0


async def test_a_reader_stuck_in_one_read_is_killed_and_replaced(label, monkeypatch):
    _, path = label
    pool = ReaderPool(1)
    await pool.start()
    try:
        monkeypatch.setattr(readers, "HUNG_AFTER_S", 0.0)
        # Every read is now "too long": the check kills the reader as soon as it has a request.
        pool._text_needed = lambda read: pool.check_hung() or True
        read = await pool.read(path, BUDGET_MS, _until())
        assert "label reader process ended" in read.no_read_reason
        monkeypatch.setattr(readers, "HUNG_AFTER_S", 5.0)
        await _wait_running(pool, 1)
    finally:
        await pool.stop()


async def test_readers_busy_until_the_deadline_is_a_no_read_not_a_wait(label):
    _, path = label
    pool = ReaderPool(1)
    await pool.start()
    try:
        first = asyncio.create_task(pool.read(path, BUDGET_MS, _until()))
        while pool._idle.qsize():                            # the only reader takes the first image
            await asyncio.sleep(0)
        second = await pool.read(path, BUDGET_MS, time.monotonic() + 0.001)
        assert "readers busy" in second.no_read_reason
        assert (await first).waybills
    finally:
        await pool.stop()


async def test_the_plans_courier_formats_reach_the_readers(tmp_path):
    frame = np.full((1024, 1280), 235, np.uint8)
    bars = code128_image("ZQ12345678", module_px=3, height_px=160)
    frame[400:400 + bars.shape[0], 200:200 + bars.shape[1]] = bars
    path = _jpeg(tmp_path / "3.jpg", frame)
    pool = ReaderPool(1)
    await pool.start()
    try:
        unknown = await pool.read(path, BUDGET_MS, _until())
        assert unknown.waybills == () and "none in a waybill format" in unknown.no_read_reason

        pool.use_plan(CourierTable(["Local"], [(1, compile_format("ZQ#{8}"), False)]))
        known = await pool.read(path, BUDGET_MS, _until())
        assert known.waybills == ("ZQ12345678",) and known.courier == "Local"
    finally:
        await pool.stop()


async def test_routing_codes_are_read_in_the_plans_shapes_only(label):
    truth, path = label
    shape = tuple(len(s) for s in truth.routing_code.split("-"))
    other = (*shape[:-1], shape[-1] + 1)
    pool = ReaderPool(1, routing_shapes={other})
    usable, message = await pool.start()
    try:
        assert usable, message
        elsewhere = await pool.read(path, BUDGET_MS, _until())
        assert elsewhere.waybills == (truth.waybill,) and elsewhere.routing_code is None

        pool.use_plan(None, {other, shape})
        read = await pool.read(path, BUDGET_MS, _until())
        assert read.waybills == (truth.waybill,) and read.routing_code == truth.routing_code
    finally:
        await pool.stop()


async def test_no_running_reader_is_said_at_once():
    pool = ReaderPool(1)
    read = await pool.read("/nowhere.jpg", BUDGET_MS, _until())
    assert "no label reader is running" in read.no_read_reason


async def test_a_reader_whose_controller_is_gone_ends_on_its_own():
    pool = ReaderPool(1)
    await pool.start()
    reader = pool._readers[0]
    asyncio.get_running_loop().remove_reader(reader.conn.fileno())
    reader.conn.close()                        # what a killed controller leaves behind
    await asyncio.get_running_loop().run_in_executor(None, reader.process.join, 10)
    assert reader.process.exitcode == 0
