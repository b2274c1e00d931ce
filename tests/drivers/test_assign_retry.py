"""An assignment whose write or answer is lost on the wire still reaches the PLC once, while the
parcel can take it. Between the link and a PLC written from docs/plc-interface.md (tests/edge/doc_plc.py)
stands a TCP relay that cuts the connection at an assignment write: before forwarding it (the PLC
never saw it: written again after the reconnect) or after (only the answer is lost: the PLC's ring
holds it, so it counts as delivered and is not written again)."""
import asyncio
import contextlib
import struct

import pytest

from drivers.link import ScanEvent
from tests.conftest import free_port
from tests.drivers.peers import linked
from tests.edge.doc_plc import ASSIGN_RING, EDGE, DocPlc

pytestmark = pytest.mark.timeout(60)

RING_FIRST, RING_LAST = EDGE + ASSIGN_RING, EDGE + ASSIGN_RING + 16 * 6 - 1


class Relay:
    """Modbus TCP passes through; `cut` says what happens to the next assignment write."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = free_port()
        self.cut: str | None = None          # "before" or "after" forwarding it
        self.cuts = 0
        self._server = None

    async def __aenter__(self):
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc):
        self._server.close()

    async def _serve(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        back = asyncio.create_task(self._pipe(up_reader, writer))
        try:
            while True:
                head = await reader.readexactly(7)
                body = await reader.readexactly(struct.unpack(">H", head[4:6])[0] - 1)
                is_assignment = body[0] == 16 and RING_FIRST <= struct.unpack(">H", body[1:3])[0] <= RING_LAST
                if is_assignment and self.cut == "before":
                    break
                if is_assignment and self.cut == "after":
                    back.cancel()                      # its answer goes nowhere
                up_writer.write(head + body)
                await up_writer.drain()
                if is_assignment and self.cut == "after":
                    await asyncio.sleep(0.02)          # the PLC has it
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            back.cancel()
            for w in (writer, up_writer):
                w.close()
        self.cuts += 1
        self.cut = None

    @staticmethod
    async def _pipe(reader, writer):
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()


async def scanned(link) -> ScanEvent:
    while True:
        ev = await asyncio.wait_for(link.events.get(), 5)
        if isinstance(ev, ScanEvent):
            return ev


@pytest.mark.parametrize("cut", ["before", "after"])
async def test_an_assignment_cut_on_the_wire_reaches_the_plc_once(cut):
    async with DocPlc(free_port()) as plc, Relay(plc.port) as relay:
        async with linked("modbus", relay.port) as link:
            await plc.scan(501)
            ev = await scanned(link)
            relay.cut = cut
            loop = asyncio.get_running_loop()
            await link.assign(ev.tracking, 3, 1, until_mono=loop.time() + 0.4)
            assert relay.cuts == 1
            await asyncio.sleep(0.1)                 # the PLC's next cycles
            assert [chute for _, chute in plc.assignments[501]] == [3]
            assert plc.refused_duplicates == 0
            counted = "assignment_retried" if cut == "before" else "assignment_arrived_unanswered"
            assert link.status.anomalies.get(counted) == 1
            # The link goes on: the next parcel's assignment is the next aseq.
            await plc.scan(502)
            ev = await scanned(link)
            await link.assign(ev.tracking, 2, 1, until_mono=loop.time() + 0.4)
            await asyncio.sleep(0.05)
            assert plc.assignments[502][0][0] == plc.assignments[501][0][0] + 1


async def test_an_assignment_with_no_time_left_is_given_up_with_the_reason():
    async with DocPlc(free_port()) as plc, Relay(plc.port) as relay:
        async with linked("modbus", relay.port) as link:
            await plc.scan(601)
            ev = await scanned(link)
            relay.cut = "before"
            with pytest.raises(ConnectionError, match="not delivered"):
                await link.assign(ev.tracking, 3, 1)           # no decision point given: no retry
            assert 601 not in plc.assignments
