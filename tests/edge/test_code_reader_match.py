"""Tying results to parcels (by trigger id, by time), and the codes read as a label, alone and with the image."""
import asyncio

import pytest

from edge.code_reader_match import KEEP_S, Matcher, Result
from edge.code_reader_read import combined, label_read
from vision.result import LabelRead, no_read
from vision.waybill import use_plan_formats

SF, YT = "SF5790189238428", "YT2465008785834"


@pytest.fixture(autouse=True)
def default_courier_rules():
    use_plan_formats(None)
    yield
    use_plan_formats(None)


def result(trigger, codes, at):
    return Result(trigger, tuple(codes), at, f"{trigger},{';'.join(codes) or 'NoRead'}")


async def test_trigger_mode_result_before_during_and_after_the_wait():
    loop = asyncio.get_running_loop()
    m = Matcher("trigger", 0.06)
    now = loop.time()
    assert m.add(result(7, [SF], now)) is None                     # before the scan event: held
    assert (await m.wait(7, now, now + 0.06)).codes == (SF,)

    async def later():
        await asyncio.sleep(0.01)
        assert m.add(result(8, [YT], loop.time())) is None
    task = asyncio.create_task(later())
    assert (await m.wait(8, loop.time(), loop.time() + 0.2)).codes == (YT,)
    await task
    assert await m.wait(9, loop.time(), loop.time() + 0.02) is None
    late = m.add(result(9, [SF], loop.time()))
    assert late.kind == "late" and "tracking 9" in late.detail


async def test_trigger_mode_an_id_no_parcel_had_is_counted_when_it_expires():
    m = Matcher("trigger", 0.06)
    t0 = asyncio.get_running_loop().time()
    assert m.add(result(123456, [SF], t0)) is None
    assert m.expire(t0 + 1.0) == []
    [problem] = m.expire(t0 + KEEP_S + 0.1)
    assert problem.kind == "unknown_trigger" and "123456" in problem.detail
    no_id = m.add(result(None, [SF], t0))
    assert no_id.kind == "garbage" and "match" in no_id.detail


async def test_time_mode_takes_the_latest_scan_before_the_result():
    loop = asyncio.get_running_loop()
    m = Matcher("time", 0.08)
    t0 = loop.time()
    first = asyncio.create_task(m.wait(1, t0 - 0.05, t0 + 0.1))
    second = asyncio.create_task(m.wait(2, t0 - 0.01, t0 + 0.1))
    await asyncio.sleep(0)
    assert m.add(result(None, [SF], t0)) is None        # both scans within 80 ms: the later one's
    assert (await second).codes == (SF,)
    assert await first is None


async def test_time_mode_result_before_the_scan_event_and_one_no_scan_claims():
    loop = asyncio.get_running_loop()
    m = Matcher("time", 0.08)
    t0 = loop.time()
    assert m.add(result(None, [SF], t0 + 0.002)) is None          # arrived before the link saw the scan
    assert (await m.wait(1, t0, t0 + 0.05)).codes == (SF,)
    assert m.add(result(None, [YT], t0 + 0.5)) is None
    assert m.expire(t0 + 0.6) == []
    [problem] = m.expire(t0 + 2.0)
    assert problem.kind == "unmatched" and YT in problem.detail


def test_codes_go_through_the_courier_rules():
    read = label_read(result(1, [SF], 0.0), 12.0, 60)
    assert read.waybills == (SF,) and read.courier == "SF" and read.is_read
    assert read.sources == {"reader": "read", "waybill": "reader"}
    multi = label_read(result(1, [SF, YT], 0.0), 12.0, 60)
    assert multi.is_multi_read and multi.sources["by_waybill"] == {SF: "reader", YT: "reader"}
    other = label_read(result(1, ["ORDER12345"], 0.0), 12.0, 60)
    assert not other.waybills and other.unknown_format == ("ORDER12345",)
    assert "unknown_format" in other.no_read_reason and "sort plan" in other.no_read_reason
    mixed = label_read(result(1, ["ORDER12345", SF], 0.0), 12.0, 60)
    assert mixed.waybills == (SF,)


def test_no_result_and_no_read_say_so():
    assert "within 60 ms" in label_read(None, 61.0, 60).no_read_reason
    assert label_read(None, 61.0, 60).sources == {"reader": "none"}
    nr = label_read(result(3, [], 0.0), 20.0, 60)
    assert not nr.is_read and "read nothing" in nr.no_read_reason and nr.sources == {"reader": "no-read"}


def test_the_image_rescues_a_reader_no_read_and_adds_the_routing_code():
    image = LabelRead((YT,), "571-J25-03", "YTO", {"waybill": "barcode", "routing_code": "text"}, 0.995, 30.0)
    rescued = combined(label_read(result(3, [], 0.0), 20.0, 60), image)
    assert rescued.waybills == (YT,) and rescued.routing_code == "571-J25-03"
    assert rescued.sources["reader"] == "no-read" and rescued.sources["waybill"] == "barcode"
    same = combined(label_read(result(3, [YT], 0.0), 20.0, 60), image)
    assert same.waybills == (YT,) and same.sources["waybill"] == "reader+barcode" and same.routing_code == "571-J25-03"
    two = combined(label_read(result(3, [SF], 0.0), 20.0, 60), image)
    assert two.is_multi_read and two.sources["by_waybill"] == {SF: "reader", YT: "barcode"}
    blank = combined(label_read(result(3, [SF], 0.0), 20.0, 60), no_read("no barcode"))
    assert blank.waybills == (SF,)
    neither = combined(label_read(None, 61.0, 60), no_read("no barcode and no printed number"))
    assert not neither.is_read
    assert neither.no_read_reason == ("no result from the code reader within 60 ms of the scan; the image: no barcode "
                                      "and no printed number")


def test_a_code_of_no_format_that_the_preadvice_lists_is_the_readers_waybill():
    read = label_read(result(1, ["ORDER12345", "AB99"], 0.0), 12.0, 60, in_preadvice=lambda t: t == "AB99")
    assert read.waybills == ("AB99",) and read.is_read
    assert read.sources["waybill"] == "reader" and read.unknown_format == ("ORDER12345",)
    unknown = label_read(result(1, ["ORDER12345"], 0.0), 12.0, 60, in_preadvice=lambda t: False)
    assert not unknown.waybills and unknown.unknown_format == ("ORDER12345",)


async def test_after_a_plc_restart_a_reused_tracking_number_is_a_new_parcel_not_a_late_result():
    loop = asyncio.get_running_loop()
    m = Matcher("trigger", 0.06)
    t0 = loop.time()
    assert await m.wait(1, t0, t0) is None                      # decided without a result
    assert m.add(result(1, [SF], t0 + 0.5)).kind == "late"
    # Much later, the PLC counts from 1 again: a result ahead of its scan event is held for it.
    assert m.add(result(1, [YT], t0 + KEEP_S + 1.0)) is None
    assert (await m.wait(1, loop.time(), loop.time() + 0.05)).codes == (YT,)
