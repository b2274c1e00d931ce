"""A sorter PLC written from docs/plc-interface.md alone, as a PLC programmer on site would.

It imports nothing of the controller's and nothing of sim_plc: register numbers, word order and
the handshake are taken from the document's tables, so a controller that passes against it
passes against the document, not against its own simulator. It has no belt: the test plays the
photo-eye (`scan`), decides what the PLC's other registers hold (`poke`, `chute_bits`,
`forget_everything`) and reads what the controller assigned (`assignments`).

Tables used: "PLC block" (registers 0-231), "Controller block" (300-411), "The handshake".
"""
import asyncio
import contextlib

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

EDGE = 300                          # the controller block, as in the document's worked example
VERSION, HEARTBEAT, LINE_STATE, BOOT_ID = 0, 1, 2, 3
SCAN_SEQ, CONFIRM_SEQ, ENCODER, ASSIGN_TAKEN, REFUSED, LAST_REFUSAL = 4, 6, 8, 12, 14, 15
SCAN_RING, CONFIRM_RING, CHUTE_FULL, CHUTE_FAULT, CHUTE_DISABLED = 16, 112, 208, 216, 224
PLC_WORDS = 232
EDGE_HEARTBEAT, SCAN_ACK, CONFIRM_ACK, CHUTE_DISABLE, ASSIGN_RING = 0, 1, 3, 8, 16
EDGE_WORDS = 112
SLOTS, SLOT_WORDS = 16, 6
RUNNING = 1
DUPLICATE = 4


def u32(value: int) -> list[int]:
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


def join(hi: int, lo: int) -> int:
    return (hi << 16) | lo


class DocPlc:
    def __init__(self, port: int, boot_id: int = 7):
        self.port, self.boot_id = port, boot_id
        device = SimDevice(id=0, simdata=[SimData(0, count=EDGE + EDGE_WORDS, values=0,
                                                  datatype=DataType.REGISTERS)])
        self.server = ModbusTcpServer(device, address=("127.0.0.1", port))
        self.scan_seq = 0
        self.encoder = 1000
        self.assignments: dict[int, list[tuple[int, int]]] = {}     # tracking -> [(aseq, chute)]
        self.refused_duplicates = 0
        self.before_reset: list[dict] = []                           # assignments of earlier numberings
        self._slot_aseq = [0] * SLOTS
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self):
        self._tasks = [asyncio.create_task(self.server.serve_forever()), asyncio.create_task(self._cycle())]
        await asyncio.sleep(0.2)
        await self.write(VERSION, [1, 0, RUNNING, self.boot_id])
        return self

    async def __aexit__(self, *exc):
        for task in self._tasks[1:]:
            task.cancel()
        await self.server.shutdown()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def write(self, address: int, values: list[int]) -> None:
        await self.server.context.async_setValues(0, 16, address, [v & 0xFFFF for v in values])

    async def read(self, address: int, count: int) -> list[int]:
        return list(await self.server.context.async_getValues(0, 3, address, count))

    async def scan(self, tracking: int, encoder: int | None = None) -> None:
        """A parcel at the photo-eye: the slot first, then SCAN_SEQ (the document's order)."""
        self.scan_seq += 1
        self.encoder = encoder if encoder is not None else self.encoder + 523
        slot = (self.scan_seq - 1) % SLOTS
        await self.write(SCAN_RING + slot * SLOT_WORDS, u32(self.scan_seq) + u32(tracking) + u32(self.encoder))
        await self.write(SCAN_SEQ, u32(self.scan_seq))

    async def chute_bits(self, full=(), fault=()) -> None:
        for base, chutes in ((CHUTE_FULL, full), (CHUTE_FAULT, fault)):
            words = [0] * 8
            for n in chutes:
                words[(n - 1) // 16] |= 1 << ((n - 1) % 16)
            await self.write(base, words)

    async def forget_everything(self) -> None:
        """A memory reset that the document does not allow: both blocks cleared, the same boot id,
        sequence numbers from 0 again (the PLC's own tracking numbering is the test's to restart)."""
        await self.write(0, [0] * PLC_WORDS)
        await self.write(EDGE, [0] * EDGE_WORDS)
        self.scan_seq = 0
        self._slot_aseq = [0] * SLOTS
        self.before_reset.append(self.assignments)
        self.assignments = {}
        await self.write(VERSION, [1, 0, RUNNING, self.boot_id])

    async def _cycle(self) -> None:
        """The PLC's scan cycle: new assignments taken every 5 ms; every 100 ms the heartbeat, with
        the version, line state and boot id written again as a PLC program does each cycle."""
        beat = 0
        while True:
            for _ in range(20):
                await asyncio.sleep(0.005)
                await self._take_assignments()
            beat = (beat + 1) & 0xFFFF
            await self.write(VERSION, [1, beat, RUNNING, self.boot_id])

    async def _take_assignments(self) -> None:
        ring = await self.read(EDGE + ASSIGN_RING, SLOTS * SLOT_WORDS)
        for slot in range(SLOTS):
            w = ring[slot * SLOT_WORDS:(slot + 1) * SLOT_WORDS]
            aseq = join(w[0], w[1])
            if aseq == self._slot_aseq[slot]:
                continue                       # the same aseq again is not news
            self._slot_aseq[slot] = aseq
            tracking, chute = join(w[2], w[3]), w[4]
            await self.write(ASSIGN_TAKEN, u32(aseq))
            if tracking in self.assignments:
                self.refused_duplicates += 1
                await self.write(LAST_REFUSAL, [DUPLICATE])
            self.assignments.setdefault(tracking, []).append((aseq, chute))

    def chute_for(self, tracking: int) -> int | None:
        got = self.assignments.get(tracking)
        return got[-1][1] if got else None
