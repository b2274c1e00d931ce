"""The code reader's TCP connection against a peer on 127.0.0.1 that sends what a broken reader sends.

Client mode (the controller connects) and server mode (the reader connects); garbage, partial
frames, overlong lines, trigger ids that never existed and a flood: each counted, alarmed with
what to check, and a parcel's result still found, within its limit, right after.
"""
import asyncio

import pytest

from edge.alarms import Alarms
from edge.code_reader import FLOOD_PER_S, SILENT_AFTER, CodeReader
from edge.tcp_input import LINK_ALARM_AFTER_S
from tests.conftest import free_port
from tests.edge.config_files import reader_section
from tests.edge.tcp_peer import Peer, until

SF, YT = "SF5790189238428", "YT2465008785834"

pytestmark = pytest.mark.timeout(60)


async def parcel(reader: CodeReader, tracking: int):
    loop = asyncio.get_running_loop()
    now = loop.time()
    return await reader.result_for(tracking, now, now + 1.0)


@pytest.fixture
async def client_pair():
    port = free_port()
    peer = Peer()
    await peer.serve(port)
    alarms = Alarms()
    reader = CodeReader(reader_section("client", port), alarms)
    await reader.start()
    await asyncio.wait_for(peer.connected.wait(), 5)
    await until(lambda: reader.connected)
    yield peer, reader, alarms
    await reader.stop()
    await peer.close()


async def test_good_results_in_client_mode(client_pair):
    peer, reader, alarms = client_pair
    task = asyncio.create_task(parcel(reader, 5))
    await asyncio.sleep(0.005)
    peer.send(f"5,{SF}\r\n".encode())
    result = await task
    assert result.codes == (SF,) and result.trigger == 5
    peer.send(b"6,NoRead\r\n")
    assert (await parcel(reader, 6)).codes == ()
    assert reader.counts["with_result"] == 1 and reader.counts["no_read"] == 1
    assert not alarms.active()


async def test_garbage_partial_overlong_and_unknown_ids_are_counted_and_the_next_parcel_is_read(client_pair):
    peer, reader, alarms = client_pair
    peer.send(b"\x00\xff\x10 line noise\r\n")                      # garbage
    peer.send(b"7;" + SF.encode() + b"\r\n")                       # another layout: garbage
    peer.send(b"8," + b"9" * 600 + b"\r\n")                         # overlong
    peer.send(f"424242,{YT}\r\n".encode())                          # an id no parcel will have
    peer.send(f"9,{SF}\r\n".encode())
    result = await parcel(reader, 9)
    assert result is not None and result.codes == (SF,)
    assert reader.problems["garbage"] == 2 and reader.problems["overlong"] == 1
    reader.check()
    alarm = next(a for a in alarms.active() if a.key == "code_reader_input")
    assert "garbage" in alarm.cause and "overlong" in alarm.cause and "other parcels are decided" in alarm.cause
    assert "template" in alarm.remedy
    assert "7;SF5790189238428" in reader.last_problem["garbage"]          # the latest of its kind


async def test_a_partial_frame_at_disconnect_is_counted_and_the_link_comes_back(client_pair):
    peer, reader, alarms = client_pair
    peer.send(b"10,SF57901")
    await asyncio.sleep(0.05)
    peer.writers[-1].close()
    await until(lambda: reader.problems["partial"] == 1)
    await until(lambda: len(peer.writers) == 2 and reader.connected)     # reconnected by itself
    peer.send(f"11,{SF}\r\n".encode())
    assert (await parcel(reader, 11)).codes == (SF,)
    assert reader.counts["connects"] == 2


async def test_late_result_does_not_change_the_decided_parcel(client_pair):
    peer, reader, _ = client_pair
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await reader.result_for(12, t0, t0 + 0.02) is None
    peer.send(f"12,{SF}\r\n".encode())
    await until(lambda: reader.problems["late"] == 1)
    assert "tracking 12" in reader.last_problem["late"]


async def test_a_flood_is_cut_and_parcels_keep_their_limit(client_pair):
    peer, reader, _ = client_pair
    flood = b"".join(f"{100000 + i},{SF}\r\n".encode() for i in range(20000))
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(parcel(reader, 13))
    peer.send(flood)
    await asyncio.sleep(0.02)
    peer.send(f"13,{YT}\r\n".encode())
    t0 = loop.time()
    result = await task
    # Over the limit the rest of the second is dropped unread: the parcel's own result may be
    # among it, but its wait ends at its limit all the same.
    assert loop.time() - t0 < 1.2
    assert result is None or result.codes == (YT,)
    await until(lambda: reader.problems["flood"] > 0)
    assert reader.counts["results"] <= 2 * FLOOD_PER_S + 1
    await asyncio.sleep(1.05)                        # a new second: results are read again
    peer.send(f"14,{SF}\r\n".encode())
    assert (await parcel(reader, 14)).codes == (SF,)


async def test_a_connected_reader_that_sends_nothing_is_an_alarm_that_clears(client_pair):
    peer, reader, alarms = client_pair
    loop = asyncio.get_running_loop()
    for tracking in range(20, 20 + SILENT_AFTER):
        now = loop.time()
        assert await reader.result_for(tracking, now, now + 0.005) is None
    reader.check()
    alarm = next(a for a in alarms.active() if a.key == "code_reader_silent")
    assert f"{SILENT_AFTER} parcels or more in a row" in alarm.cause and "trigger" in alarm.remedy
    # A silent reader is not waited for: the next parcel goes to its image at once.
    t0 = loop.time()
    assert await reader.result_for(39, t0, t0 + 1.0) is None
    assert loop.time() - t0 < 0.05
    # It sends again (a late result for a parcel gone): parcels wait for it again.
    peer.send(f"39,{YT}\r\n".encode())
    await until(lambda: reader.problems["late"] == 1)
    task = asyncio.create_task(parcel(reader, 40))
    await asyncio.sleep(0.01)
    peer.send(f"40,{SF}\r\n".encode())
    assert (await task).codes == (SF,)
    reader.check()
    assert not alarms.is_active("code_reader_silent")


async def test_no_reader_at_the_address_is_an_alarm_after_a_while():
    alarms = Alarms()
    reader = CodeReader(reader_section("client", free_port()), alarms)
    await reader.start()
    try:
        await asyncio.sleep(LINK_ALARM_AFTER_S + 0.3)
        reader.check()
        alarm = next(a for a in alarms.active() if a.key == "code_reader_link")
        assert "not connected since" in alarm.cause and "cannot connect" in alarm.cause
        now = asyncio.get_running_loop().time()
        assert await reader.result_for(1, now, now + 0.01) is None     # the parcel goes on
    finally:
        await reader.stop()


async def test_server_mode_a_reconnecting_reader_replaces_its_old_connection():
    port = free_port()
    alarms = Alarms()
    reader = CodeReader(reader_section("server", port, framing="stx-etx", template="{codes}", match="time"), alarms)
    await reader.start()
    try:
        await until(lambda: reader.listening)
        _, first = await asyncio.open_connection("127.0.0.1", port)
        await until(lambda: reader.connected)
        _, second = await asyncio.open_connection("127.0.0.1", port)
        await until(lambda: reader.counts["connects"] == 2)
        loop = asyncio.get_running_loop()
        now = loop.time()
        task = asyncio.create_task(reader.result_for(1, now, now + 0.5))
        await asyncio.sleep(0.01)
        second.write(f"\x02{SF}\r\n\x03".encode())
        assert (await task).codes == (SF,)
        assert reader.connected
        first.close()
        second.close()
    finally:
        await reader.stop()


async def test_server_port_taken_is_an_alarm_and_listening_starts_once_it_is_free():
    port = free_port()
    holder = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
    alarms = Alarms()
    reader = CodeReader(reader_section("server", port, reconnect_max_ms=100.0), alarms)
    await reader.start()                               # does not raise: the line sorts from images
    try:
        await asyncio.sleep(LINK_ALARM_AFTER_S + 0.3)
        reader.check()
        alarm = next(a for a in alarms.active() if a.key == "code_reader_link")
        assert f"cannot listen on 127.0.0.1:{port}" in alarm.cause
        holder.close()
        await holder.wait_closed()
        await until(lambda: reader.listening)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        await until(lambda: reader.connected)
        reader.check()
        assert not alarms.is_active("code_reader_link")
        writer.close()
    finally:
        await reader.stop()


def test_images_are_read_early_while_most_parcels_need_them():
    reader = CodeReader(reader_section("client", 1))
    assert not reader.images_needed()
    for routed in [True] * 6 + [False] * 5:
        reader.note_routed(routed)
    assert not reader.images_needed()                 # 5 of 11 needed their image
    for _ in range(2):
        reader.note_routed(False)
    assert reader.images_needed()                     # 7 of 13
    for _ in range(50):
        reader.note_routed(True)
    assert not reader.images_needed()                 # the last 50 routed by their codes
