"""A sorter PLC written from docs/plc-interface.md alone, as a PLC programmer on site would.

It imports nothing of the controller's and nothing of sim_plc: register numbers, word order, the
handshake, the refusal order, the decision point, the result codes, the heartbeat watch and the
restart rule are the document's, each constant named by the table it comes from. A controller (or
a simulator) that agrees with it therefore agrees with the document, not with a second copy of
its own code.

It runs a belt: a 5 ms cycle advances the encoder by the belt speed while the line runs, and a
parcel's decision point, diverter and landing are belt positions after its scan. The test plays
the photo-eye (`scan`), the chute sensors (`set_chute_full`, `set_chute_fault`, `chute_bits`), the
operator (`jam`, `estop`, `clear`) and the power (`restart`, `forget_everything`); `write`/`poke`
put any value into the PLC's own registers, and `assignments` is every assignment it detected.

The line's own numbers (belt speed, switch time, PLC margin, chute positions, heartbeat timeout)
are the line config's, handed over as a `Line`; the default is the test line of
tests/edge/config_files.py, whose first diverters, speed, switch time and margin are the
document's county example (1.5 m, 2.0 m/s, 300 ms, 50 ms).
"""
import asyncio
import contextlib
import time
from dataclasses import dataclass
from enum import IntEnum

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

# "Conventions": the two blocks at their default bases, 8-register chute bit fields, and the
# simulator's 5 ms cycle ("Timing" allows up to 50 ms on the county line).
PLC_BASE, EDGE = 0, 300
CYCLE_S = 0.005
CHUTE_WORDS = 8
# "PLC block": offsets from plc_base.
VERSION, HEARTBEAT, LINE_STATE, BOOT_ID = 0, 1, 2, 3
SCAN_SEQ, CONFIRM_SEQ, ENCODER, EDGE_HB_SEEN, FLAGS = 4, 6, 8, 10, 11
ASSIGN_TAKEN, REFUSED, LAST_REFUSAL = 12, 14, 15
SCAN_RING, CONFIRM_RING, CHUTE_FULL, CHUTE_FAULT, CHUTE_DISABLED = 16, 112, 208, 216, 224
PLC_WORDS = 232
INTERFACE_VERSION = 1                # VERSION: "interface version, 1"
HEARTBEAT_PERIOD_S = 0.1             # PLC_HEARTBEAT: "+1 every 100 ms"
# "Controller block": offsets from edge_base.
EDGE_HEARTBEAT, SCAN_ACK, CONFIRM_ACK, CHUTE_DISABLE, ASSIGN_RING = 0, 1, 3, 8, 16
EDGE_WORDS = 112
SLOTS, SLOT_WORDS = 16, 6            # both rings: 16 slots of 6 registers
# "Heartbeats": heartbeat_timeout_ms (500 ms) unless the line config says otherwise.
HEARTBEAT_TIMEOUT_S = 0.5
# "Line state": parcels this close to a jam are taken off the belt when it is cleared.
JAM_ZONE_M = 0.5
# "Points the tables leave open", finished tracking numbers: the simulator remembers 4096, the
# reference program 256; one no longer remembered is refused UNKNOWN_TRACKING.
FINISHED_KEPT = 4096



async def _within(coro, timeout_s: float) -> None:
    """Await a pymodbus call for at most `timeout_s`. Not asyncio.wait_for: pymodbus waits with
    wait_for inside, and a cancellation lost there would make wait_for wait for ever."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        raise TimeoutError(f"pymodbus did not finish within {timeout_s} s")
    task.result()

class State(IntEnum):
    """LINE_STATE ("PLC block")."""
    STOPPED = 0
    RUNNING = 1
    ESTOP = 2
    JAM = 3
    FAULT = 4


class Refusal(IntEnum):
    """LAST_REFUSAL ("Assignments" table), in the order the PLC checks them."""
    UNKNOWN_TRACKING = 1
    ALREADY_FINISHED = 2
    LATE = 3
    DUPLICATE = 4
    NO_SUCH_CHUTE = 5


class Result(IntEnum):
    """Confirmation result ("Divert and confirmation" table)."""
    DIVERTED = 1
    LATE = 2
    NO_HEARTBEAT = 3
    CHUTE_UNAVAILABLE = 4
    INVALID_ASSIGNMENT = 5
    LOST = 6


def u32(value: int) -> list[int]:
    """"Conventions": high word first."""
    return [(value >> 16) & 0xFFFF, value & 0xFFFF]


def join(hi: int, lo: int) -> int:
    return (hi << 16) | lo


def bits(chutes) -> list[int]:
    """"Conventions": chute n is bit (n-1) % 16 of register (n-1) // 16."""
    words = [0] * CHUTE_WORDS
    for n in chutes:
        if 1 <= n <= CHUTE_WORDS * 16:
            words[(n - 1) // 16] |= 1 << ((n - 1) % 16)
    return words


def chutes_of(words) -> set[int]:
    return {w * 16 + b + 1 for w, word in enumerate(words) for b in range(16) if word >> b & 1}


@dataclass(frozen=True)
class Line:
    """What the PLC program is set up with on site: the line config's numbers."""
    belt_speed_m_s: float = 2.0
    switch_time_s: float = 0.3
    plc_margin_s: float = 0.05
    chutes: tuple[tuple[int, float], ...] = ((1, 1.5), (2, 1.5), (3, 2.7), (4, 2.7), (5, 3.9), (6, 5.0))
    end_chute: int = 6
    encoder_mm_per_count: float = 1.0
    heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S

    def position_m(self, chute: int) -> float:
        return dict(self.chutes)[chute]

    @property
    def numbers(self) -> set[int]:
        return {n for n, _ in self.chutes}

    @property
    def decision_m(self) -> float:
        """"The handshake": first divert position - belt speed x (switch time + PLC margin)."""
        first = min(m for n, m in self.chutes if n != self.end_chute)
        return first - self.belt_speed_m_s * (self.switch_time_s + self.plc_margin_s)

    def fire_m(self, chute: int) -> float:
        """"Divert and confirmation": the diverter moves at chute position - belt speed x switch time."""
        return self.position_m(chute) - self.belt_speed_m_s * self.switch_time_s


@dataclass
class Parcel:
    tracking: int
    scan_m: float                    # belt travel when it passed the photo-eye
    chute: int = 0                   # the assignment taken
    invalid: int | None = None       # the chute of an assignment refused as NO_SUCH_CHUTE
    target: int = 0                  # where it is committed to go, from its decision point on
    result: Result | None = None
    fire_m: float | None = None      # travel after the scan at which its diverter is due
    lands_m: float = 0.0


class DocPlc:
    def __init__(self, port: int, boot_id: int = 7, line: Line = Line()):
        self.port, self.line = port, line
        self.regs = [0] * (EDGE + EDGE_WORDS)      # addresses past the controller block do not exist
        self.server: ModbusTcpServer | None = None
        self.next_tracking = 1                     # retentive: "not reset by a restart"
        self.travel_m = 0.0                        # the encoder, as belt travel since power-up
        self._encoder_offset = 0
        self._moved_at_s = 0.0
        self.full: set[int] = set()                # the chutes' full sensors
        self.faulted: set[int] = set()
        self.assignments: dict[int, list[tuple[int, int]]] = {}     # tracking -> [(aseq, chute)], as detected
        self.before_reset: list[dict] = []                           # assignments of earlier numberings
        self.confirmations: list[tuple[int, int, int, int, int]] = []   # (boot, seq, tracking, chute, result)
        self.refused_duplicates = 0
        self.counters = {"refused": {r.name: 0 for r in Refusal}, "refused_writes": 0, "missing_chute_bits": 0,
                         "heartbeat_losses": 0, "scan_overruns": 0, "restarts": 0, "lost_in_jams": 0}
        self._tasks: list[asyncio.Task] = []
        self._boot(boot_id)

    # -- power ------------------------------------------------------------------------------------
    async def __aenter__(self):
        await self._listen()
        self._tasks = [asyncio.create_task(self._cycles(), name="doc-plc-cycle")]
        return self

    async def __aexit__(self, *exc):
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._unlisten()

    async def _listen(self) -> None:
        device = SimDevice(id=0, simdata=[SimData(0, count=len(self.regs), values=0, datatype=DataType.REGISTERS)],
                           action=self._request)
        self.server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await _within(self.server.serve_forever(background=True), 5)

    async def _unlisten(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await _within(server.shutdown(), 5)       # drops every open connection

    def _boot(self, boot_id: int) -> None:
        """"PLC restart": both blocks cleared (sequence numbers, rings, ASSIGN_TAKEN, REFUSED, the
        controller's heartbeat and disabled chutes); parcels tracked before are forgotten."""
        self.boot_id = boot_id
        self.regs[:] = [0] * len(self.regs)
        self.scan_seq = self.confirm_seq = self.refused = self.heartbeat = 0
        self._slot_aseq = [0] * SLOTS
        # "Memory": the heartbeat value found at start is not a beat, and START_UP has just cleared
        # it, so the first value the controller writes after a start is one.
        self._edge_hb = self.regs[EDGE + EDGE_HEARTBEAT]
        self._edge_hb_changed_s = 0.0
        self.edge_alive = False
        self.disabled: set[int] = set()
        self._disable_bits: set[int] = set()
        self.parcels: dict[int, Parcel] = {}
        self.finished: dict[int, None] = {}
        self._published: dict[int, list[int]] = {}
        self._jam_m: float | None = None
        self.state = State.RUNNING
        self.powered = True
        self._moved_at_s = time.monotonic()
        self._next_beat_s = self._moved_at_s
        self._header()

    async def restart(self, down_s: float = 1.0) -> None:
        """Off for `down_s` (connections dropped and refused), then BOOT_ID + 1, never 0."""
        self._advance()
        self.powered = False
        self.counters["restarts"] += 1
        await self._unlisten()
        await asyncio.sleep(down_s)
        self._boot(self.boot_id % 0xFFFF + 1)
        await self._listen()

    async def forget_everything(self) -> None:
        """A memory reset that the document does not allow: both blocks cleared, the same boot id,
        sequence numbers and tracking numbers from the start again; connections stay open."""
        self.before_reset.append(self.assignments)
        self.assignments = {}
        self.next_tracking = 1
        self._advance()
        self._boot(self.boot_id)

    # -- registers ----------------------------------------------------------------------------------
    async def _request(self, func_code, start, address, count, registers, values):
        """Every Modbus request ("Conventions"): function code 3 reads both blocks, 16 writes the
        controller block; any other function is 01, a write elsewhere 02, counted, and changes
        nothing. Every unit id is answered, as many PLCs' own servers do."""
        if func_code not in (3, 16):
            return ExcCodes.ILLEGAL_FUNCTION
        if values is None:
            registers[address - start:address - start + count] = self.regs[address:address + count]
            return None
        if not self.powered:
            return ExcCodes.DEVICE_BUSY
        if not EDGE <= address <= address + count <= EDGE + EDGE_WORDS:
            self.counters["refused_writes"] += 1
            return ExcCodes.ILLEGAL_ADDRESS
        self.regs[address:address + count] = [int(v) & 0xFFFF for v in values]
        return None

    def poke(self, address: int, values: list[int]) -> None:
        """The PLC program writes its own memory (any register, any value)."""
        self.regs[address:address + len(values)] = [v & 0xFFFF for v in values]

    async def write(self, address: int, values: list[int]) -> None:
        self.poke(address, values)

    async def read(self, address: int, count: int) -> list[int]:
        return self.regs[address:address + count]

    def _u32(self, address: int) -> int:
        return join(self.regs[address], self.regs[address + 1])

    def _header(self) -> None:
        self.poke(PLC_BASE + VERSION, [INTERFACE_VERSION, self.heartbeat, self.state, self.boot_id])

    def _publish(self, offset: int, values: list[int]) -> None:
        """Refreshed every cycle; written only when the PLC's own value changed, as a PLC copies
        its data block (whatever else was written there meanwhile stays until then)."""
        if self._published.get(offset) != values:
            self._published[offset] = values
            self.poke(PLC_BASE + offset, values)

    # -- the belt --------------------------------------------------------------------------------------
    def _advance(self) -> None:
        now = time.monotonic()
        if self.powered and self.state == State.RUNNING:
            self.travel_m += (now - self._moved_at_s) * self.line.belt_speed_m_s
        self._moved_at_s = now

    def encoder(self) -> int:
        counts = int(self.travel_m * 1000 / self.line.encoder_mm_per_count)
        return (counts + self._encoder_offset) & 0xFFFFFFFF

    def _set_state(self, state: State) -> None:
        self._advance()
        self.state = state
        self._header()

    def estop(self) -> None:
        self._set_state(State.ESTOP)

    def jam(self, position_m: float | None = None) -> None:
        """A jam at `position_m` after the scan point (the first diverters unless told): the belt stands."""
        self._jam_m = min(m for n, m in self.line.chutes if n != self.line.end_chute) \
            if position_m is None else position_m
        self._set_state(State.JAM)

    def clear(self) -> None:
        """"Line state": the parcels within 0.5 m of a cleared jam are LOST (chute 0), then RUNNING."""
        self._advance()
        if self.state == State.JAM and self._jam_m is not None:
            for p in list(self.parcels.values()):
                if abs(self.travel_m - p.scan_m - self._jam_m) <= JAM_ZONE_M:
                    self.counters["lost_in_jams"] += 1
                    p.target, p.result = 0, Result.LOST
                    self._confirm(p)
        self._jam_m = None
        self._set_state(State.RUNNING)

    def set_chute_full(self, chute: int, on: bool) -> None:
        (self.full.add if on else self.full.discard)(chute)

    def set_chute_fault(self, chute: int, on: bool) -> None:
        (self.faulted.add if on else self.faulted.discard)(chute)

    async def chute_bits(self, full=(), fault=()) -> None:
        """The sensor inputs as wired: spare inputs of the 128-chute bit field included."""
        self.full, self.faulted = set(full), set(fault)
        self._publish_chutes()

    # -- the photo-eye ------------------------------------------------------------------------------------
    async def scan(self, tracking: int | None = None, encoder: int | None = None) -> int:
        """A parcel at the photo-eye: the slot first, then SCAN_SEQ ("The handshake"). `encoder`
        presets the counter to that value at this instant (the PLC compares belt travel, not the
        register, so a preset moves no parcel)."""
        if not self.powered or self.state != State.RUNNING:
            raise RuntimeError(f"no parcel passes the scan point while the line is "
                               f"{'off' if not self.powered else self.state.name}")
        if tracking is None:
            tracking = self.next_tracking
            self.next_tracking = self.next_tracking % 0xFFFFFFFF + 1          # u32, never 0
        self._advance()
        if encoder is not None:
            self._encoder_offset += encoder - self.encoder()
        self.parcels[tracking] = Parcel(tracking, self.travel_m)
        self.scan_seq += 1
        if self.scan_seq - self._u32(EDGE + SCAN_ACK) > SLOTS:
            self.counters["scan_overruns"] += 1
        slot = (self.scan_seq - 1) % SLOTS
        self.poke(PLC_BASE + SCAN_RING + slot * SLOT_WORDS, u32(self.scan_seq) + u32(tracking) + u32(self.encoder()))
        self.poke(PLC_BASE + SCAN_SEQ, u32(self.scan_seq))
        return tracking

    # -- the cycle ------------------------------------------------------------------------------------------
    async def _cycles(self) -> None:
        while True:
            await asyncio.sleep(CYCLE_S)
            if self.powered:
                self._cycle()

    def _cycle(self) -> None:
        """"Order of the steps in one PLC cycle": inputs, heartbeats, assignments, then the parcels
        (decision point, diverter, landing), then the chute states. Scans come from the test at
        once, as the simulator writes them the moment they happen."""
        self._advance()
        now = self._moved_at_s
        if now >= self._next_beat_s:
            self.heartbeat = (self.heartbeat + 1) & 0xFFFF
            self._next_beat_s = max(self._next_beat_s + HEARTBEAT_PERIOD_S, now)
            self._header()
        self._read_disabled()
        self._watch_heartbeat(now)
        self._take_assignments()
        for p in list(self.parcels.values()):
            self._move(p)
        self._publish(ENCODER, u32(self.encoder()))
        self._publish_chutes()

    def _watch_heartbeat(self, now: float) -> None:
        """"Heartbeats": a change of EDGE_HEARTBEAT is a beat; none for the timeout clears FLAGS bit 0."""
        hb = self.regs[EDGE + EDGE_HEARTBEAT]
        if hb != self._edge_hb:
            self._edge_hb, self._edge_hb_changed_s, self.edge_alive = hb, now, True
        elif self.edge_alive and now - self._edge_hb_changed_s > self.line.heartbeat_timeout_s:
            self.edge_alive = False
            self.counters["heartbeat_losses"] += 1
        self._publish(EDGE_HB_SEEN, [hb])
        self._publish(FLAGS, [1 if self.edge_alive else 0])

    def _read_disabled(self) -> None:
        """"Chute state": the controller's CHUTE_DISABLE for chutes that exist; bits for others are
        ignored and counted."""
        named = chutes_of(self.regs[EDGE + CHUTE_DISABLE:EDGE + CHUTE_DISABLE + CHUTE_WORDS])
        if named - self.line.numbers and named != self._disable_bits:
            self.counters["missing_chute_bits"] += 1
        self._disable_bits, self.disabled = named, named & self.line.numbers

    def _publish_chutes(self) -> None:
        self._publish(CHUTE_FULL, bits(self.full))
        self._publish(CHUTE_FAULT, bits(self.faulted))
        self._publish(CHUTE_DISABLED, bits(self.disabled))

    # -- assignments -------------------------------------------------------------------------------------------
    def _take_assignments(self) -> None:
        """"Order of the steps in one PLC cycle", step 5: slots whose aseq changed, lowest aseq first
        (the same aseq again is not news; aseq 0 is an empty slot)."""
        ring = self.regs[EDGE + ASSIGN_RING:EDGE + ASSIGN_RING + SLOTS * SLOT_WORDS]
        news = []
        for slot in range(SLOTS):
            w = ring[slot * SLOT_WORDS:(slot + 1) * SLOT_WORDS]
            aseq = join(w[0], w[1])
            if aseq != self._slot_aseq[slot]:
                self._slot_aseq[slot] = aseq
                if aseq:
                    news.append((aseq, join(w[2], w[3]), w[4]))
        for aseq, tracking, chute in sorted(news):
            self._take(aseq, tracking, chute)

    def _take(self, aseq: int, tracking: int, chute: int) -> None:
        """"Assignments": ASSIGN_TAKEN raised to the aseq if higher (the highest taken since start),
        then the checks in the table's order."""
        self.assignments.setdefault(tracking, []).append((aseq, chute))
        if aseq > self._u32(PLC_BASE + ASSIGN_TAKEN):
            self.poke(PLC_BASE + ASSIGN_TAKEN, u32(aseq))
        p = self.parcels.get(tracking)
        if p is None:
            refusal = Refusal.ALREADY_FINISHED if tracking in self.finished else Refusal.UNKNOWN_TRACKING
        elif p.result is not None or self.travel_m - p.scan_m >= self.line.decision_m:
            refusal = Refusal.LATE
        elif p.chute or p.invalid is not None:
            refusal = Refusal.DUPLICATE
        elif chute not in self.line.numbers:
            refusal, p.invalid = Refusal.NO_SUCH_CHUTE, chute
        else:
            p.chute = chute
            return
        self.counters["refused"][refusal.name] += 1
        self.refused_duplicates += refusal == Refusal.DUPLICATE
        self.refused = (self.refused + 1) & 0xFFFF
        self.poke(PLC_BASE + REFUSED, [self.refused, refusal])

    # -- decision point, diverter, landing ---------------------------------------------------------------------
    def _move(self, p: Parcel) -> None:
        travel = self.travel_m - p.scan_m
        line = self.line
        if p.result is None:
            if travel < line.decision_m:
                return
            if not self.edge_alive:
                p.target, p.result = line.end_chute, Result.NO_HEARTBEAT
            elif p.invalid is not None:
                p.target, p.result = line.end_chute, Result.INVALID_ASSIGNMENT
            elif not p.chute:
                p.target, p.result = line.end_chute, Result.LATE
            else:
                p.target, p.result = p.chute, Result.DIVERTED
                if p.chute != line.end_chute:
                    p.fire_m = line.fire_m(p.chute)
            p.lands_m = line.position_m(p.target)
        if p.fire_m is not None:
            if travel < p.fire_m:
                return
            p.fire_m = None
            if p.target in self.full | self.faulted | self.disabled:
                p.target, p.result = line.end_chute, Result.CHUTE_UNAVAILABLE
                p.lands_m = line.position_m(line.end_chute)
        if travel >= p.lands_m:
            self._confirm(p)

    def _confirm(self, p: Parcel) -> None:
        """The slot first, then CONFIRM_SEQ; the parcel is finished."""
        assert p.result is not None
        self.confirm_seq += 1
        slot = (self.confirm_seq - 1) % SLOTS
        self.poke(PLC_BASE + CONFIRM_RING + slot * SLOT_WORDS,
                  u32(self.confirm_seq) + u32(p.tracking) + [p.target, p.result])
        self.poke(PLC_BASE + CONFIRM_SEQ, u32(self.confirm_seq))
        self.confirmations.append((self.boot_id, self.confirm_seq, p.tracking, p.target, int(p.result)))
        del self.parcels[p.tracking]
        self.finished[p.tracking] = None
        if len(self.finished) > FINISHED_KEPT:
            del self.finished[next(iter(self.finished))]

    def chute_for(self, tracking: int) -> int | None:
        got = self.assignments.get(tracking)
        return got[-1][1] if got else None
