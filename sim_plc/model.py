"""The PLC's logic on a register image: tracking, handshake, diverts, heartbeat.

Protocol servers (Modbus, later OPC UA) share one register list with this model; the model
never awaits, so every change it makes is atomic with respect to the requests they serve.
"""
import asyncio
import logging
from dataclasses import dataclass, field

from drivers import regmap as rm
from drivers.regmap import DivertResult, LineState, RegisterMap, join_u32, split_u32

from .geometry import LineGeometry

log = logging.getLogger("sortline.sim")

HEARTBEAT_PERIOD_S = 0.1


@dataclass
class Parcel:
    tracking: int
    scan_time_s: float
    truth: object = None                 # label ground truth, opaque to the PLC
    expected_chute: int = 0
    assigned_chute: int = 0
    assigned_reason: int = 0
    assigned_at_s: float | None = None
    invalid_assignment: bool = False
    decided: bool = False                # the decision point has passed
    result: DivertResult | None = None
    actual_chute: int = 0
    landed_at_s: float | None = None
    divert_error_s: float | None = None  # diverter fire time minus the computed time


@dataclass
class Counters:
    refused_unknown: int = 0
    refused_late: int = 0
    refused_duplicate: int = 0
    refused_chute: int = 0
    heartbeat_losses: int = 0


class PlcModel:
    def __init__(self, geometry: LineGeometry, regs: list[int], regmap: RegisterMap = RegisterMap(),
                 heartbeat_timeout_s: float = 0.5, boot_id: int = 1):
        self.geometry = geometry
        self.regs = regs
        self.map = regmap
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.parcels: dict[int, Parcel] = {}
        self.finished: list[Parcel] = []
        self.counters = Counters()
        self.full: set[int] = set()
        self.faulted: set[int] = set()
        self.next_tracking = 1
        self._loop = asyncio.get_running_loop()
        self._slot_aseq = [0] * rm.RING_SLOTS
        self._edge_hb = regs[regmap.edge(rm.EDGE_HEARTBEAT)]   # alive only once it changes
        self._edge_hb_changed_s = self._loop.time()
        self._edge_alive = False
        self._scan_seq = 0
        self._confirm_seq = 0
        self._heartbeat = 0
        self._task = None
        self._boot(boot_id)

    # -- registers -------------------------------------------------------------------------
    def _set(self, offset: int, value: int) -> None:
        self.regs[self.map.plc(offset)] = value & 0xFFFF

    def _set_u32(self, offset: int, value: int) -> None:
        hi, lo = split_u32(value)
        a = self.map.plc(offset)
        self.regs[a:a + 2] = [hi, lo]

    def _edge_word(self, offset: int) -> int:
        return self.regs[self.map.edge(offset)]

    def _boot(self, boot_id: int) -> None:
        a = self.map.plc(0)
        self.regs[a:a + rm.PLC_BLOCK_WORDS] = [0] * rm.PLC_BLOCK_WORDS
        self._set(rm.PLC_VERSION, rm.INTERFACE_VERSION)
        self._set(rm.PLC_BOOT_ID, boot_id)
        self._set(rm.PLC_LINE_STATE, LineState.RUNNING)
        self._scan_seq = self._confirm_seq = 0
        self._slot_aseq = [self._edge_slot(i)[0] for i in range(rm.RING_SLOTS)]

    def _edge_slot(self, i: int) -> tuple[int, int, int, int]:
        a = self.map.edge(rm.EDGE_ASSIGN_RING + i * rm.SLOT_WORDS)
        w = self.regs[a:a + rm.SLOT_WORDS]
        return join_u32(w[0], w[1]), join_u32(w[2], w[3]), w[4], w[5]

    # -- cyclic work -------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._cycle(), name="plc-cycle")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _cycle(self) -> None:
        while True:
            self._heartbeat = (self._heartbeat + 1) & 0xFFFF
            self._set(rm.PLC_HEARTBEAT, self._heartbeat)
            self._watch_edge_heartbeat()
            self._publish_chute_state()
            await asyncio.sleep(HEARTBEAT_PERIOD_S)

    def _publish_chute_state(self) -> None:
        for offset, chutes in ((rm.PLC_CHUTE_FULL, self.full), (rm.PLC_CHUTE_FAULT, self.faulted),
                               (rm.PLC_CHUTE_DISABLED, self.disabled_chutes())):
            a = self.map.plc(offset)
            self.regs[a:a + rm.CHUTE_BIT_WORDS] = rm.chute_bits(chutes)

    def _watch_edge_heartbeat(self) -> None:
        now = self._loop.time()
        hb = self._edge_word(rm.EDGE_HEARTBEAT)
        if hb != self._edge_hb:
            self._edge_hb = hb
            self._edge_hb_changed_s = now
            if not self._edge_alive:
                log.info("controller heartbeat present")
            self._edge_alive = True
        elif self._edge_alive and now - self._edge_hb_changed_s > self.heartbeat_timeout_s:
            self._edge_alive = False
            self.counters.heartbeat_losses += 1
            log.warning("controller heartbeat lost: every parcel goes to the end chute")
        self._set(rm.PLC_EDGE_HB_SEEN, hb)
        self._set(rm.PLC_FLAGS, 1 if self._edge_alive else 0)

    def edge_alive(self) -> bool:
        return self._edge_alive and self._loop.time() - self._edge_hb_changed_s <= self.heartbeat_timeout_s

    # -- the scan photo-eye ---------------------------------------------------------------------
    def scan(self, truth=None, expected_chute: int = 0) -> Parcel:
        """A parcel passes the scan photo-eye: track it and publish a scan event."""
        now = self._loop.time()
        p = Parcel(self.next_tracking, now, truth, expected_chute)
        self.next_tracking = (self.next_tracking + 1) & 0xFFFFFFFF or 1
        self.parcels[p.tracking] = p
        self._scan_seq += 1
        slot = (self._scan_seq - 1) % rm.RING_SLOTS
        a = self.map.plc(rm.PLC_SCAN_RING + slot * rm.SLOT_WORDS)
        counts = int(now * self.geometry.belt_speed_m_s * 1000 / self.geometry.encoder_mm_per_count)
        self.regs[a:a + rm.SLOT_WORDS] = [*split_u32(self._scan_seq), *split_u32(p.tracking), *split_u32(counts)]
        self._set_u32(rm.PLC_SCAN_SEQ, self._scan_seq)
        self._set_u32(rm.PLC_ENCODER, counts)
        self._loop.call_at(now + self.geometry.decision_after_scan_s, self._decision_point, p)
        return p

    def _decision_point(self, p: Parcel) -> None:
        p.decided = True
        g = self.geometry
        if not self.edge_alive():
            target, result = g.end_chute, DivertResult.NO_HEARTBEAT
        elif p.invalid_assignment:
            target, result = g.end_chute, DivertResult.INVALID_ASSIGNMENT
        elif not p.assigned_chute:
            target, result = g.end_chute, DivertResult.LATE
        else:
            target, result = p.assigned_chute, DivertResult.DIVERTED
        if target != g.end_chute:
            fire_at = p.scan_time_s + g.arrival_after_scan_s(target) - g.switch_time_s
            self._loop.call_at(fire_at, self._fire_diverter, p, target, fire_at)
        else:
            self._loop.call_at(p.scan_time_s + g.arrival_after_scan_s(target), self._land, p, target, result)

    def _fire_diverter(self, p: Parcel, chute: int, planned_s: float) -> None:
        g = self.geometry
        p.divert_error_s = self._loop.time() - planned_s
        if chute in self.full or chute in self.faulted or chute in self.disabled_chutes():
            self._loop.call_at(p.scan_time_s + g.arrival_after_scan_s(g.end_chute), self._land, p,
                               g.end_chute, DivertResult.CHUTE_UNAVAILABLE)
            return
        self._loop.call_at(planned_s + g.switch_time_s, self._land, p, chute, DivertResult.DIVERTED)

    def _land(self, p: Parcel, chute: int, result: DivertResult) -> None:
        p.actual_chute, p.result, p.landed_at_s = chute, result, self._loop.time()
        del self.parcels[p.tracking]
        self.finished.append(p)
        self._confirm_seq += 1
        slot = (self._confirm_seq - 1) % rm.RING_SLOTS
        a = self.map.plc(rm.PLC_CONFIRM_RING + slot * rm.SLOT_WORDS)
        self.regs[a:a + rm.SLOT_WORDS] = [*split_u32(self._confirm_seq), *split_u32(p.tracking), chute, result]
        self._set_u32(rm.PLC_CONFIRM_SEQ, self._confirm_seq)

    def disabled_chutes(self) -> set[int]:
        a = self.map.edge(rm.EDGE_CHUTE_DISABLE)
        return rm.chutes_from_bits(self.regs[a:a + rm.CHUTE_BIT_WORDS])

    # -- writes from the controller --------------------------------------------------------------
    def on_edge_write(self, address: int, values: list[int]) -> None:
        """Called by a protocol server before it stores a controller write at `address`."""
        ring0 = self.map.edge(rm.EDGE_ASSIGN_RING)
        ring1 = ring0 + rm.RING_SLOTS * rm.SLOT_WORDS
        lo, hi = max(address, ring0), min(address + len(values), ring1)
        if lo >= hi:
            return
        image = self.regs[ring0:ring1]
        image[lo - ring0:hi - ring0] = values[lo - address:hi - address]
        for slot in range((lo - ring0) // rm.SLOT_WORDS, (hi - ring0 - 1) // rm.SLOT_WORDS + 1):
            w = image[slot * rm.SLOT_WORDS:(slot + 1) * rm.SLOT_WORDS]
            aseq = join_u32(w[0], w[1])
            if aseq == 0 or aseq == self._slot_aseq[slot]:
                continue
            self._slot_aseq[slot] = aseq
            self._take_assignment(aseq, join_u32(w[2], w[3]), w[4], w[5])

    def _take_assignment(self, aseq: int, tracking: int, chute: int, reason: int) -> None:
        a = self.map.plc(rm.PLC_ASSIGN_TAKEN)
        if aseq > join_u32(self.regs[a], self.regs[a + 1]):
            self._set_u32(rm.PLC_ASSIGN_TAKEN, aseq)
        p = self.parcels.get(tracking)
        if p is None:
            self._refuse("refused_unknown", f"assignment {aseq} for unknown tracking number {tracking}")
        elif p.decided:
            self._refuse("refused_late", f"assignment {aseq} for tracking {tracking} after its decision point")
        elif p.assigned_chute or p.invalid_assignment:
            self._refuse("refused_duplicate", f"second assignment {aseq} for tracking {tracking}")
        elif self.geometry.chute(chute) is None:
            p.invalid_assignment = True
            self._refuse("refused_chute", f"assignment {aseq}: chute {chute} does not exist")
        else:
            p.assigned_chute, p.assigned_reason, p.assigned_at_s = chute, reason, self._loop.time()

    def _refuse(self, counter: str, message: str) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        refused = sum(vars(self.counters).values()) - self.counters.heartbeat_losses
        self._set(rm.PLC_REFUSED, refused)
        log.warning("refused %s", message)
