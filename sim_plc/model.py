"""The PLC's logic on a register image: tracking, handshake, diverts, heartbeat, line state.

Protocol servers (Modbus here, OPC UA beside it) answer from `regs` and hand every controller
write to `on_edge_write`. The model never awaits, so each change it makes is atomic with respect
to the requests they serve; `watchers` are told of every change, for servers that push values.

Everything that happens to a parcel happens at a belt position (sim_plc.belt): the decision
point, the diverter firing, the landing. Times here are host monotonic seconds (`*_s` from
`loop.time()`); belt travel is metres (`*_m`); encoder counts exist only in the registers.

The logic is the reference PLC program's (plc/sortline_sorter.st), step by step under the same
names, so that a PLC programmer can read one beside the other:

    STEP 1  START_UP          _step_start_up          power-on: BOOT_ID + 1, both blocks cleared
    STEP 2  READ_INPUTS       _step_read_inputs       the belt position (the encoder)
    STEP 3  PLC_HEARTBEAT     _step_plc_heartbeat     +1 every 100 ms
    STEP 4  WATCH_HEARTBEAT   _step_watch_heartbeat   the controller's heartbeat, FLAGS bit 0
    STEP 5  TAKE_ASSIGNMENTS  _step_take_assignments  slots whose aseq changed, the refusal order
    STEP 6  SCAN              _step_scan              tracking number, scan ring slot, SCAN_SEQ
    STEP 7  DECISION_POINT    _step_decision_point    the parcel is committed to its target
    STEP 8  DIVERT            _step_divert            the diverter fires, or the chute is unavailable
    STEP 9  CONFIRM           _step_confirm           landing: confirmation slot, CONFIRM_SEQ
    STEP 10 CHUTE_STATE       _step_chute_state       CHUTE_FULL / CHUTE_FAULT / CHUTE_DISABLED
    STEP 11 WRITE_OUTPUTS     _step_write_outputs     ENCODER

A PLC runs them in this order every cycle. Here the cyclic ones (2, 3, 4, 10, 11) run every
PLC_CYCLE_S in `_cycle_once`; the others run at the exact moment their event happens (a
controller write, the photo-eye, a belt position), as on a PLC whose cycle were infinitely short.
Each of them is a synchronous call, so no request is served in the middle of one.
"""
import asyncio
import collections
import logging
from dataclasses import dataclass, field

from drivers import regmap as rm
from drivers.regmap import DivertResult, LineState, Refusal, RegisterMap, join_u32, split_u32

from .belt import Belt
from .chutes import ChuteBank, ChuteSettings
from edge.line_geometry import LineGeometry

log = logging.getLogger("sortline.sim")

PLC_CYCLE_S = 0.005              # encoder, flags and chute bits are refreshed every cycle
HEARTBEAT_PERIOD_S = 0.1
JAM_ZONE_M = 0.5                 # parcels this close to a jam are taken off the belt to clear it
RECENT_FINISHED = 4096           # tracking numbers remembered after landing, to tell "already done" from "unknown"
DIVERTER_LEAD_S = 0.003          # diverter timers wake this early and wait out the rest exactly (sim_plc.belt)


@dataclass
class Parcel:
    tracking: int
    scan_time_s: float
    scan_m: float                        # belt travel when the parcel passed the scan photo-eye
    truth: object = None                 # ground truth from the shift, opaque to the PLC
    expected_chute: tuple = ()
    length_m: float = 0.4
    boot_id: int = 0
    assigned_chute: int = 0
    assigned_reason: int = 0
    assigned_at_s: float | None = None
    invalid_assignment: int | None = None    # the chute number of an assignment refused as no such chute
    refused: list = field(default_factory=list)   # (Refusal, chute, host time) of refused assignments
    decided: bool = False                # the decision point has passed
    unavailable: str = ""                # why the assigned chute could not be used at divert time
    result: DivertResult | None = None
    actual_chute: int = 0
    landed_at_s: float | None = None
    confirmed: bool = False              # a confirmation went into the ring (not after a PLC restart)
    why_lost: str = ""
    divert_error_s: float | None = None  # diverter fire time minus the computed time
    timer: object = None


@dataclass
class Counters:
    """Everything the PLC refused or noticed, cumulative over restarts."""
    refused_unknown: int = 0
    refused_finished: int = 0
    refused_late: int = 0
    refused_duplicate: int = 0
    refused_chute: int = 0
    readonly_writes: int = 0             # controller writes into PLC-owned or reserved registers
    bad_disable_bits: int = 0            # disable commands naming chutes this line does not have
    heartbeat_losses: int = 0
    scan_overruns: int = 0               # scan events overwritten before the controller acknowledged them
    restarts: int = 0
    jams_cleared_lost: int = 0


_REFUSAL_COUNTER = {
    Refusal.UNKNOWN_TRACKING: "refused_unknown", Refusal.ALREADY_FINISHED: "refused_finished",
    Refusal.LATE: "refused_late", Refusal.DUPLICATE: "refused_duplicate", Refusal.NO_SUCH_CHUTE: "refused_chute",
}


def image_words(regmap: RegisterMap) -> int:
    """Registers from address 0 to the end of the higher of the two blocks."""
    return max(regmap.plc_base + rm.PLC_BLOCK_WORDS, regmap.edge_base + rm.EDGE_BLOCK_WORDS)


class PlcModel:
    def __init__(self, geometry: LineGeometry, regs: list[int] | None = None, regmap: RegisterMap = RegisterMap(),
                 heartbeat_timeout_s: float = 0.5, boot_id: int = 1, chutes: ChuteSettings = ChuteSettings()):
        if regmap.overlaps():
            raise ValueError(f"PLC block at {regmap.plc_base} and controller block at {regmap.edge_base} overlap")
        self.geometry = geometry
        self.map = regmap
        self.regs = regs if regs is not None else [0] * image_words(regmap)
        if len(self.regs) < image_words(regmap):
            raise ValueError(f"register image of {len(self.regs)} words is smaller than the map needs "
                             f"({image_words(regmap)})")
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.watchers: list = []             # callables (address, count) told of every register change
        self.parcels: dict[int, Parcel] = {}
        self.finished: list[Parcel] = []
        self.counters = Counters()
        self.next_tracking = 1               # retentive: never reset by a restart
        self._loop = asyncio.get_running_loop()
        self.belt = Belt(geometry.belt_speed_m_s, self._loop)
        self.chutes = ChuteBank([c.number for c in geometry.chutes], geometry.end_chute, chutes)
        self._chute_numbers = {c.number for c in geometry.chutes}
        self._recent = collections.OrderedDict()
        self._task = None
        self._jam_m = None
        self.powered = False
        self.boot_id = 0
        self._step_start_up(boot_id)

    # -- registers -------------------------------------------------------------------------
    def _put(self, address: int, values: list[int]) -> None:
        self.regs[address:address + len(values)] = values
        for watch in self.watchers:
            watch(address, len(values))

    def _set(self, offset: int, value: int) -> None:
        self._put(self.map.plc(offset), [value & 0xFFFF])

    def _set_u32(self, offset: int, value: int) -> None:
        self._put(self.map.plc(offset), list(split_u32(value)))

    def _get_u32(self, address: int) -> int:
        return join_u32(self.regs[address], self.regs[address + 1])

    def _step_start_up(self, boot_id: int) -> None:
        """STEP 1 START_UP. Power on: non-retentive memory (both register blocks) starts cleared."""
        self.boot_id = boot_id
        self._put(self.map.plc(0), [0] * rm.PLC_BLOCK_WORDS)
        self._put(self.map.edge(0), [0] * rm.EDGE_BLOCK_WORDS)
        self._set(rm.PLC_VERSION, rm.INTERFACE_VERSION)
        self._set(rm.PLC_BOOT_ID, boot_id)
        self._scan_seq = self._confirm_seq = self._refused_since_boot = 0
        self._heartbeat = 0
        self._slot_aseq = [0] * rm.RING_SLOTS
        self._edge_hb = None
        self._edge_hb_changed_s = self._loop.time()
        self._edge_alive = False
        self._next_beat_s = self._loop.time()
        self._published = {}
        self._recent.clear()
        self.powered = True
        self._set_state(LineState.RUNNING)
        self.belt.start()
        self._cycle_once()

    # -- cyclic work -------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._cycle(), name="plc-cycle")

    async def stop(self) -> None:
        self.belt.stop()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():
                    raise
            self._task = None

    async def _cycle(self) -> None:
        while True:
            if self.powered:
                self._cycle_once()
            await asyncio.sleep(PLC_CYCLE_S)

    def _cycle_once(self) -> None:
        """One PLC cycle: the cyclic steps, in the program's order."""
        now = self._loop.time()
        position_m = self._step_read_inputs(now)
        self._step_plc_heartbeat(now)
        self._step_watch_heartbeat(now)
        self._step_chute_state(now)
        self._step_write_outputs(position_m)

    def _step_read_inputs(self, now: float) -> float:
        """STEP 2 READ_INPUTS: the encoder, as belt travel."""
        return self.belt.position_m(now)

    def _step_plc_heartbeat(self, now: float) -> None:
        """STEP 3 PLC_HEARTBEAT: +1 every HEARTBEAT_PERIOD_S, no burst after a stall."""
        if now >= self._next_beat_s:
            self._heartbeat = (self._heartbeat + 1) & 0xFFFF
            self._set(rm.PLC_HEARTBEAT, self._heartbeat)
            self._next_beat_s = max(self._next_beat_s + HEARTBEAT_PERIOD_S, now)

    def _step_write_outputs(self, position_m: float) -> None:
        """STEP 11 WRITE_OUTPUTS: the ENCODER register (the diverters are timers on the belt here)."""
        self._set_u32(rm.PLC_ENCODER, self.geometry.counts(position_m))

    def _publish_if_changed(self, offset: int, values: list[int]) -> None:
        if self._published.get(offset) != values:
            self._published[offset] = values
            self._put(self.map.plc(offset), values)

    def _step_chute_state(self, now: float) -> None:
        """STEP 10 CHUTE_STATE: full sensors, diverter faults, the disabled chutes that exist."""
        self._publish_if_changed(rm.PLC_CHUTE_FULL, rm.chute_bits(self.chutes.full(now)))
        self._publish_if_changed(rm.PLC_CHUTE_FAULT, rm.chute_bits(self.chutes.faulted))
        self._publish_if_changed(rm.PLC_CHUTE_DISABLED, rm.chute_bits(self.disabled_chutes()))

    def _step_watch_heartbeat(self, now: float) -> None:
        """STEP 4 WATCH_HEARTBEAT: a change is a beat; silence longer than the timeout clears FLAGS bit 0."""
        hb = self.regs[self.map.edge(rm.EDGE_HEARTBEAT)]
        if hb != self._edge_hb:
            first = self._edge_hb is None
            self._edge_hb = hb
            if not first:                   # a value left over from before start-up is not a beat
                self._edge_hb_changed_s = now
                if not self._edge_alive:
                    log.info("controller heartbeat present")
                self._edge_alive = True
        elif self._edge_alive and now - self._edge_hb_changed_s > self.heartbeat_timeout_s:
            self._edge_alive = False
            self.counters.heartbeat_losses += 1
            log.warning("controller heartbeat lost for %.0f ms: every parcel goes to the end chute",
                        self.heartbeat_timeout_s * 1000)
        self._publish_if_changed(rm.PLC_EDGE_HB_SEEN, [hb])
        self._publish_if_changed(rm.PLC_FLAGS, [1 if self._edge_alive else 0])

    def confirmations_acknowledged(self) -> bool:
        """The controller has taken every divert confirmation written so far."""
        a = self.map.edge(rm.EDGE_CONFIRM_ACK)
        return join_u32(self.regs[a], self.regs[a + 1]) >= self._confirm_seq

    def edge_alive(self) -> bool:
        return self._edge_alive and self._loop.time() - self._edge_hb_changed_s <= self.heartbeat_timeout_s

    # -- line state: the operator's and the machine's faults ----------------------------------
    @property
    def line_state(self) -> LineState:
        return LineState(self.regs[self.map.plc(rm.PLC_LINE_STATE)])

    def _set_state(self, state: LineState) -> None:
        self._set(rm.PLC_LINE_STATE, state)

    def estop(self) -> None:
        """Emergency stop: the belt stops at once; tracking follows the encoder, so nothing is lost."""
        self._halt(LineState.ESTOP)
        log.warning("emergency stop: belt stopped")

    def stop_line(self) -> None:
        self._halt(LineState.STOPPED)
        log.info("line stopped by the operator")

    def jam(self, position_m: float | None = None) -> None:
        """A jam at `position_m` after the scan point (default: the first diverters) stops the belt."""
        self._jam_m = self.geometry.first_divert_m if position_m is None else position_m
        self._halt(LineState.JAM)
        log.warning("jam at %.1f m: belt stopped", self._jam_m)

    def _halt(self, state: LineState) -> None:
        if not self.powered:
            raise RuntimeError("the PLC is off (restarting): nothing to stop")
        self.belt.stop()
        self._set_state(state)

    def clear(self) -> None:
        """The operator clears the fault and starts the line; parcels in a jam are taken off the belt."""
        if not self.powered:
            raise RuntimeError("the PLC is off (restarting): wait for it to boot")
        if self.line_state == LineState.JAM and self._jam_m is not None:
            now_m = self.belt.position_m()
            for p in list(self.parcels.values()):
                if abs(now_m - p.scan_m - self._jam_m) <= JAM_ZONE_M:
                    self.counters.jams_cleared_lost += 1
                    self._lose(p, f"taken off the belt to clear a jam at {self._jam_m:.1f} m")
        self._jam_m = None
        self._set_state(LineState.RUNNING)
        self.belt.start()
        log.info("line running")

    def power_off(self) -> None:
        """The PLC goes down: motors stop, and every tracked parcel is forgotten with its timers."""
        self.belt.stop()
        for p in list(self.parcels.values()):
            self.belt.cancel(p.timer)
            p.result, p.actual_chute, p.landed_at_s = DivertResult.LOST, self.geometry.end_chute, self._loop.time()
            p.why_lost = "the PLC restarted while the parcel was on the belt: it ran untracked to the end chute"
            self._finish(p)
        self.powered = False
        self.counters.restarts += 1

    def power_on(self) -> None:
        """Boot with the next BOOT_ID: sequence numbers start again, both register blocks are cleared."""
        if self.powered:
            raise RuntimeError("the PLC is already on")
        self._step_start_up((self.boot_id % 0xFFFF) + 1)
        log.warning("PLC booted: boot id %d, sequence numbers restart from 1", self.boot_id)

    # -- chutes ------------------------------------------------------------------------------------
    def set_chute_full(self, chute: int, on: bool | None) -> None:
        self._check_chute(chute)
        self.chutes.force_full(chute, on)
        self._step_chute_state(self._loop.time())

    def set_chute_fault(self, chute: int, on: bool) -> None:
        self._check_chute(chute)
        self.chutes.set_fault(chute, on)
        self._step_chute_state(self._loop.time())

    def _check_chute(self, chute: int) -> None:
        if chute not in self._chute_numbers:
            raise ValueError(f"chute {chute} is not a chute of this line ({min(self._chute_numbers)}-"
                             f"{max(self._chute_numbers)})")

    def disabled_chutes(self) -> set[int]:
        a = self.map.edge(rm.EDGE_CHUTE_DISABLE)
        return rm.chutes_from_bits(self.regs[a:a + rm.CHUTE_BIT_WORDS]) & self._chute_numbers

    def unavailable(self, chute: int, now: float) -> str:
        if chute in self.chutes.faulted:
            return "faulted"
        if chute in self.disabled_chutes():
            return "disabled"
        if chute in self.chutes.full(now):
            return "full"
        return ""

    # -- the scan photo-eye ---------------------------------------------------------------------
    def scan(self, truth=None, expected_chute=(), length_m: float = 0.4) -> Parcel:
        """A parcel passes the scan photo-eye: track it and publish a scan event."""
        if not self.powered or not self.belt.running:
            raise RuntimeError(f"no parcel can pass the scan point while the line is "
                               f"{'off' if not self.powered else self.line_state.name}")
        return self._step_scan(truth, expected_chute, length_m)

    def _step_scan(self, truth, expected_chute, length_m: float) -> Parcel:
        """STEP 6 SCAN: a tracking number, the scan ring slot, then SCAN_SEQ."""
        now = self._loop.time()
        scan_m = self.belt.position_m(now)
        expected = tuple(expected_chute) if isinstance(expected_chute, (tuple, list)) else (expected_chute,)
        p = Parcel(self.next_tracking, now, scan_m, truth, expected, length_m, self.boot_id)
        self.next_tracking = (self.next_tracking + 1) & 0xFFFFFFFF or 1
        self.parcels[p.tracking] = p
        self._scan_seq += 1
        acked = self._get_u32(self.map.edge(rm.EDGE_SCAN_ACK))
        if self._edge_alive and self._scan_seq - acked > rm.RING_SLOTS:
            self.counters.scan_overruns += 1
        slot = (self._scan_seq - 1) % rm.RING_SLOTS
        counts = self.geometry.counts(scan_m)
        self._put(self.map.plc(rm.PLC_SCAN_RING + slot * rm.SLOT_WORDS),
                  [*split_u32(self._scan_seq), *split_u32(p.tracking), *split_u32(counts)])
        self._set_u32(rm.PLC_SCAN_SEQ, self._scan_seq)
        self._set_u32(rm.PLC_ENCODER, counts)
        p.timer = self.belt.at(scan_m + self.geometry.decision_m, self._step_decision_point, p)
        return p

    def _step_decision_point(self, _planned_s: float, p: Parcel) -> None:
        """STEP 7 DECISION_POINT: the parcel is committed; a lost heartbeat wins over any assignment."""
        p.decided = True
        g = self.geometry
        if not self.edge_alive():
            target, result = g.end_chute, DivertResult.NO_HEARTBEAT
        elif p.invalid_assignment is not None:
            target, result = g.end_chute, DivertResult.INVALID_ASSIGNMENT
        elif not p.assigned_chute:
            target, result = g.end_chute, DivertResult.LATE
        else:
            target, result = p.assigned_chute, DivertResult.DIVERTED
        if target != g.end_chute:
            p.timer = self.belt.at(p.scan_m + g.fire_m(target), self._step_divert, p, target,
                                   lead_s=DIVERTER_LEAD_S)
        else:
            p.timer = self.belt.at(p.scan_m + g.end_m, self._step_confirm, p, target, result)

    def _step_divert(self, planned_s: float, p: Parcel, chute: int) -> None:
        """STEP 8 DIVERT: the diverter fires unless its chute is full, faulted or disabled right now."""
        now = self._loop.time()
        p.divert_error_s = now - planned_s
        p.unavailable = self.unavailable(chute, now)
        if p.unavailable:
            p.timer = self.belt.at(p.scan_m + self.geometry.end_m, self._step_confirm, p, self.geometry.end_chute,
                                   DivertResult.CHUTE_UNAVAILABLE)
        else:
            p.timer = self.belt.at(p.scan_m + self.geometry.chute(chute).position_m, self._step_confirm, p, chute,
                                   DivertResult.DIVERTED)

    def _step_confirm(self, _planned_s: float, p: Parcel, chute: int, result: DivertResult) -> None:
        """STEP 9 CONFIRM: the parcel is in its chute; confirmation slot, then CONFIRM_SEQ."""
        p.actual_chute, p.result, p.landed_at_s = chute, result, self._loop.time()
        self.chutes.land(chute, p.landed_at_s)
        self._write_confirmation(p)
        self._finish(p)

    def _lose(self, p: Parcel, why: str) -> None:
        self.belt.cancel(p.timer)
        p.actual_chute, p.result, p.landed_at_s, p.why_lost = 0, DivertResult.LOST, self._loop.time(), why
        self._write_confirmation(p)
        self._finish(p)

    def _write_confirmation(self, p: Parcel) -> None:
        self._confirm_seq += 1
        slot = (self._confirm_seq - 1) % rm.RING_SLOTS
        self._put(self.map.plc(rm.PLC_CONFIRM_RING + slot * rm.SLOT_WORDS),
                  [*split_u32(self._confirm_seq), *split_u32(p.tracking), p.actual_chute, int(p.result)])
        self._set_u32(rm.PLC_CONFIRM_SEQ, self._confirm_seq)
        p.confirmed = True

    def _finish(self, p: Parcel) -> None:
        p.timer = None
        del self.parcels[p.tracking]
        self.finished.append(p)
        self._recent[p.tracking] = None
        if len(self._recent) > RECENT_FINISHED:
            self._recent.popitem(last=False)

    # -- writes from the controller --------------------------------------------------------------
    def on_edge_write(self, address: int, values: list[int]) -> str | None:
        """A controller write, before any protocol server stores it. Returns why it is refused, or None.

        A refused write changes nothing. An accepted one is stored here (the server may store the
        same values again) and acted upon at once, as a PLC that handles the write in its next
        cycle would, a few milliseconds later.
        """
        e0, e1 = self.map.edge(0), self.map.edge(rm.EDGE_BLOCK_WORDS)
        if address < e0 or address + len(values) > e1:
            self.counters.readonly_writes += 1
            log.warning("refused a write of %d registers at %d: only the controller block %d-%d is writable",
                        len(values), address, e0, e1 - 1)
            return "read-only"
        if not self.powered:
            return "off"
        self._put(address, [v & 0xFFFF for v in values])
        end = address + len(values)
        now = self._loop.time()
        if address <= self.map.edge(rm.EDGE_HEARTBEAT) < end:
            self._step_watch_heartbeat(now)
        d0 = self.map.edge(rm.EDGE_CHUTE_DISABLE)
        if address < d0 + rm.CHUTE_BIT_WORDS and end > d0:
            named = rm.chutes_from_bits(self.regs[d0:d0 + rm.CHUTE_BIT_WORDS])
            if named - self._chute_numbers:
                self.counters.bad_disable_bits += 1
                log.warning("controller disabled chutes %s that this line does not have: ignored",
                            sorted(named - self._chute_numbers))
            self._step_chute_state(now)
        self._step_take_assignments(address, end)
        return None

    def _step_take_assignments(self, address: int, end: int) -> None:
        """STEP 5 TAKE_ASSIGNMENTS: the written slots whose aseq changed (a slot rewritten with the
        same aseq is not news; aseq 0 is an empty slot)."""
        ring0 = self.map.edge(rm.EDGE_ASSIGN_RING)
        ring1 = ring0 + rm.RING_SLOTS * rm.SLOT_WORDS
        lo, hi = max(address, ring0), min(end, ring1)
        for slot in range((lo - ring0) // rm.SLOT_WORDS, (hi - ring0 - 1) // rm.SLOT_WORDS + 1) if lo < hi else ():
            a = ring0 + slot * rm.SLOT_WORDS
            w = self.regs[a:a + rm.SLOT_WORDS]
            aseq = join_u32(w[0], w[1])
            if aseq == 0 or aseq == self._slot_aseq[slot]:
                continue
            self._slot_aseq[slot] = aseq
            self._take_assignment(aseq, join_u32(w[2], w[3]), w[4], w[5])

    def _take_assignment(self, aseq: int, tracking: int, chute: int, reason: int) -> None:
        """One new assignment: ASSIGN_TAKEN is the highest aseq taken; then the refusal order
        UNKNOWN_TRACKING / ALREADY_FINISHED, LATE, DUPLICATE, NO_SUCH_CHUTE, else accepted."""
        if aseq > self._get_u32(self.map.plc(rm.PLC_ASSIGN_TAKEN)):
            self._set_u32(rm.PLC_ASSIGN_TAKEN, aseq)
        p = self.parcels.get(tracking)
        if p is None:
            refusal = Refusal.ALREADY_FINISHED if tracking in self._recent else Refusal.UNKNOWN_TRACKING
        elif p.decided or self.belt.position_m() >= p.scan_m + self.geometry.decision_m:
            # By position, not only by the flag: the decision-point timer may not have run yet.
            refusal = Refusal.LATE
        elif p.assigned_chute or p.invalid_assignment is not None:
            refusal = Refusal.DUPLICATE
        elif chute not in self._chute_numbers:
            refusal = Refusal.NO_SUCH_CHUTE
            p.invalid_assignment = chute
        else:
            p.assigned_chute, p.assigned_reason, p.assigned_at_s = chute, reason, self._loop.time()
            return
        if p is not None:
            p.refused.append((refusal, chute, self._loop.time()))
        counter = _REFUSAL_COUNTER[refusal]
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self._refused_since_boot += 1
        self._set(rm.PLC_REFUSED, self._refused_since_boot)
        self._set(rm.PLC_LAST_REFUSAL, refusal)
        log.warning("refused assignment %d (tracking %d, chute %d): %s", aseq, tracking, chute,
                    refusal.name.lower().replace("_", " "))
