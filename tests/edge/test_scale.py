"""The scale on TCP: its config, its lines, and a real peer on 127.0.0.1 that sends what a faulty scale sends."""
import asyncio
import logging

import pytest

from edge.alarms import Alarms
from edge.code_reader_format import Problem
from edge.config import load_config
from edge.scale import LineFormat, Scale
from edge.tcp_input import LINK_ALARM_AFTER_S
from tests.conftest import free_port
from tests.edge.config_files import assert_one_problem, section_problems, write
from tests.edge.tcp_peer import Peer, until

pytestmark = pytest.mark.timeout(60)


# -- config -----------------------------------------------------------------------------------------
def problems(tmp_path, scale: str) -> list[str]:
    return section_problems(tmp_path, "scale", scale)


def test_left_out_it_is_off(tmp_path):
    assert load_config(write(tmp_path))["scale"]["mode"] == "off"


def test_a_working_scale_section_loads(tmp_path):
    assert problems(tmp_path, 'mode = "client"\nhost = "192.168.0.40"\nport = 4001\nfields = "id,skip,weight"\n'
                              'separator = " "\nweight_unit = "g"\nmax_weight_kg = 60\n') == []


@pytest.mark.parametrize("scale, words", [
    ('mode = "clinet"\n', ['[scale] mode: not an allowed value (did you mean "client"?)']),
    ('mode = "client"\nfields = "id,weigth"\n', ["[scale] fields: weigth not a field", "fields ="]),
    ('mode = "client"\nfields = "id,weight,length"\n', ["[scale] fields: name all three of length, width and height"]),
    ('mode = "client"\nfields = "weight"\n', ["[scale] fields: id is named 0 times"]),
    ('mode = "client"\nweight_unit = "lb"\n', ['[scale] weight_unit: not an allowed value']),
    ('mode = "client"\nmax_weight_kg = 0\n', ["[scale] max_weight_kg: out of range"]),
    ('mode = "server"\nport = 15020\n', ["[scale] port: the controller would listen on a port this PC already "
                                         "uses ([plc] port)"]),
    ('mode = "client"\nmax_weight = 50\n', ["[scale] max_weight: unknown key (did you mean max_weight_kg?)"]),
])
def test_mistakes_are_named_with_their_fix(tmp_path, scale, words):
    assert_one_problem(problems(tmp_path, scale), words)


# -- lines ----------------------------------------------------------------------------------------------
def fmt(**keys) -> LineFormat:
    base = {"fields": "id,weight,length,width,height", "separator": ",", "weight_unit": "kg",
            "max_weight_kg": 100.0, "max_side_mm": 3000.0}
    base.update(keys)
    return LineFormat.from_config(base)


@pytest.mark.parametrize("line, expected", [
    (b"1201,2.35,400,300,200", (1201, 2.35, (400.0, 300.0, 200.0))),
    (b"1201,2.35", (1201, 2.35, None)),
    (b"1201, 2350g", (1201, 2.35, None)),
    (b"77,31.5kg,1200,800,600", (77, 31.5, (1200.0, 800.0, 600.0))),
])
def test_good_lines(line, expected):
    got = fmt().parse(line)
    assert not isinstance(got, Problem), got
    assert got[0] == expected[0] and got[1] == pytest.approx(expected[1]) and got[2] == expected[2]


def test_grams_by_config_and_a_skipped_field():
    got = fmt(fields="id,skip,weight", separator=" ", weight_unit="g").parse(b"1201 08:15:02 2350")
    assert got == (1201, pytest.approx(2.35), None)


@pytest.mark.parametrize("line, kind, words", [
    (b"1201,-0.40", "negative", "-0.4 kg"),
    (b"1201,250", "absurd", "more than [scale] max_weight_kg = 100"),
    (b"1201,2.0,400,0,200", "absurd", "a side outside 1 to 3000 mm"),
    (b"1201,2.0,400,300,99999", "absurd", "a side outside"),
    (b"SF123,2.0", "garbage", "not a tracking number"),
    (b"1201,heavy", "garbage", "not a number"),
    (b"1201,2.0,400,300", "garbage", "2 of 3 sides"),
    (b"1201,2.0,400,300,200,9", "garbage", "6 fields"),
    (b"\xff\xfe", "garbage", "not text"),
])
def test_bad_lines_are_problems_naming_what_is_wrong(line, kind, words):
    got = fmt().parse(line)
    assert isinstance(got, Problem) and got.kind == kind and words in got.detail, got


# -- the TCP link ------------------------------------------------------------------------------------
def settings(mode: str, port: int, **keys) -> dict:
    base = {"mode": mode, "host": "127.0.0.1", "port": port, "framing": "line",
            "fields": "id,weight,length,width,height", "separator": ",", "weight_unit": "kg",
            "max_weight_kg": 100.0, "max_side_mm": 3000.0, "max_frame_bytes": 64, "reconnect_max_ms": 200.0}
    base.update(keys)
    return base


async def test_client_mode_weighings_reach_their_parcels_and_bad_ones_are_counted_and_alarmed(caplog):
    port = free_port()
    peer = Peer()
    await peer.serve(port)
    alarms = Alarms()
    scale = Scale(settings("client", port), alarms)
    await scale.start()
    try:
        await until(lambda: scale.connected and peer.writers)
        with caplog.at_level(logging.WARNING, "sortline.edge"):
            peer.send(b"1,2.5,400,300,200\r\n2,-1.2\r\n3,9999\r\n4,x" + b"9" * 100 + b"\n5,0.8\r\n")
            await until(lambda: scale.counts["weighings"] == 2 and sum(scale.problems.values()) == 3)
            scale.check()
        assert scale.problems == {"negative": 1, "absurd": 1, "overlong": 1}
        first = scale.weighing_for(1)
        assert first is not None and first.weight_kg == 2.5 and first.volume_l == pytest.approx(24.0)
        assert first.longest_mm == 400
        assert scale.weighing_for(2) is None           # negative: decided without a weight
        assert scale.weighing_for(3) is None           # absurd
        assert scale.weighing_for(5).weight_kg == 0.8
        assert scale.weighing_for(1) is None           # taken once
        alarm = next(a for a in alarms.active() if a.key == "scale_input")
        assert "absurd" in alarm.cause and "negative" in alarm.cause and "without their weight" in alarm.cause
        assert "zero" in alarm.remedy or "max_weight_kg" in alarm.remedy
        assert "tare" in caplog.text and "max_weight_kg" in caplog.text
        # The scale goes away: reconnected by itself, an alarm only when it stays away.
        await peer.close()
        await until(lambda: not scale.connected)
        await asyncio.sleep(LINK_ALARM_AFTER_S + 0.3)
        scale.check()
        link = next(a for a in alarms.active() if a.key == "scale_link")
        assert "not connected since" in link.cause and "without their weight" in link.cause
        await peer.serve(port)
        await until(lambda: scale.connected, 5.0)
        peer.send(b"6,1.0\n")
        await until(lambda: scale.counts["weighings"] == 3)
        scale.check()
        assert not alarms.is_active("scale_link")
        assert scale.weighing_for(6).weight_kg == 1.0
    finally:
        await scale.stop()
        await peer.close()


async def test_server_mode_the_scale_connects_in_stx_etx():
    port = free_port()
    scale = Scale(settings("server", port, framing="stx-etx", fields="id,weight", weight_unit="g"), Alarms())
    await scale.start()
    try:
        await until(lambda: scale.listening)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x0242,1500\x03\x02garbage\x03")
        await writer.drain()
        await until(lambda: scale.counts["weighings"] == 1 and scale.problems["garbage"] == 1)
        assert scale.weighing_for(42).weight_kg == 1.5
        writer.close()
    finally:
        await scale.stop()


async def test_a_late_weighing_and_one_no_parcel_takes_are_counted_apart(monkeypatch):
    import edge.scale
    monkeypatch.setattr(edge.scale, "KEPT_S", 0.2)
    port = free_port()
    scale = Scale(settings("server", port, fields="id,weight"), Alarms())
    await scale.start()
    try:
        await until(lambda: scale.listening)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert scale.weighing_for(7) is None                  # decided before its weighing came
        writer.write(b"7,1.5\n8,2.0\n" + b"9" * 80 + b"\n")
        await writer.drain()
        await until(lambda: scale.problems["late"] == 1 and scale.problems["overlong"] == 1)
        assert "[scale] max_frame_bytes" in scale.last_problem["overlong"]
        assert "after its decision" in scale.last_problem["late"]
        await asyncio.sleep(0.3)
        scale.check()
        assert scale.problems["unknown_id"] == 1 and "id 8" in scale.last_problem["unknown_id"]
        assert scale.weighing_for(8) is None
        writer.close()
    finally:
        await scale.stop()
