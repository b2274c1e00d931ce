"""The same scenarios against two PLCs, each with the real controller: the simulator (sim_plc, in
this process) and DocPlc (tests/edge/doc_plc.py, written from docs/plc-interface.md alone).

What is compared is what the PLC shows any Modbus client, read over the wire by `PlcWatch` the same
way for both: its confirmations, refusals, FLAGS, chute bits, boot id, sequence numbers and the
assignments its controller block holds. The controller's own account is not an outcome here.
Between the controller and the PLC stands `Relay`, the network, which can stop carrying for a while.

The line is configs/county-24.toml with a short belt (end chute 3.2 m after the scan) so that a
parcel lands within 1.6 s; its first diverters, speed, switch time and margin are the county's,
so the decision point is the document's: 0.8 m, 400 ms after the scan.
"""
import asyncio
import contextlib
import functools
import os
from dataclasses import dataclass

import pytest

from drivers.regmap import RegisterMap
from drivers.timed_awaits import bounded, cancel_and_wait
from edge.config import load_config
from edge.config_copy import derive_config
from edge.run import build_controller
from sim_plc.plc import SimPlc
from tests.conftest import REPO, free_port
from tests.edge.doc_plc import (ASSIGN_RING, ASSIGN_TAKEN, BOOT_ID, CONFIRM_RING, CONFIRM_SEQ, EDGE, FLAGS,
                                LAST_REFUSAL, LINE_STATE, REFUSED, SCAN_RING, SCAN_SEQ, SLOT_WORDS, SLOTS, VERSION,
                                DocPlc, Line, Refusal, Result, State, chutes_of, join)
from tests.sim_plc.helpers import until

# A scenario's own waits are bounded (start-up up to 60 s on a loaded machine, then seconds each);
# SCENARIO_S bounds the whole body so that a stuck one fails with the line it waited on, and
# pytest-timeout stays behind it as the last resort.
SCENARIO_S = 120
pytestmark = pytest.mark.timeout(SCENARIO_S + 60)

CHUTES = [{"number": 1, "position_m": 1.5, "side": "left"}, {"number": 2, "position_m": 1.5, "side": "right"},
          {"number": 3, "position_m": 2.1, "side": "left"}, {"number": 4, "position_m": 2.1, "side": "right"},
          {"number": 5, "position_m": 2.7, "side": "left"}, {"number": 6, "position_m": 3.2, "side": "end"}]
END = 6

PLAN = """\
[plan]
version = "scenarios-1"

[special]
no_read = 6
multi_read = 6
no_rule = 5
overflow = 5
reject = 6

[destinations."Qicun"]
chutes = [1]

[destinations."Shuanglin"]
chutes = [2]

[destinations."Lugang"]
chutes = [3]

[[courier_rules]]
courier = "YTO"
destination = "Shuanglin"

[[courier_rules]]
courier = "JT"
destination = "Lugang"

[[overrides]]
courier = "SF"
chutes = [4]

[preadvice]
files = ["pre.csv"]
"""

# Label (the Code 128 waybill on it, or None for no label) and the chute the plan gives it.
LABELS = {"PRE": ("TK0123456789X", 1),          # pre-advised for Qicun
          "YTO": ("YT1234567890123", 2),        # courier rule
          "JT": ("JT1234567890123", 3),         # courier rule
          "SF": ("SF1234567890123", 4),         # courier override
          "JD": ("JDX123456789012", 5),         # a courier without a rule: no_rule
          None: (None, END)}                    # no label: no_read, the end chute
MIX = ["SF", "YTO", "JT", "PRE", "JD", None]

# Results and refusals by their numbers in the document's tables.
DIVERTED, LATE, NO_HEARTBEAT, UNAVAILABLE, LOST = (Result.DIVERTED, Result.LATE, Result.NO_HEARTBEAT,
                                                   Result.CHUTE_UNAVAILABLE, Result.LOST)


@functools.cache
def label_png(text: str) -> bytes:
    import cv2
    import numpy as np
    import zxingcpp
    symbol = np.asarray(zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.Code128).to_image(scale=3))
    symbol = symbol if symbol.ndim == 2 else symbol[..., 0]
    frame = np.full((600, 800), 255, np.uint8)
    frame[250:250 + symbol.shape[0], 80:80 + symbol.shape[1]] = symbol
    return cv2.imencode(".png", frame)[1].tobytes()


def line_config(folder, port: int, **plc_keys):
    (folder / "pre.csv").write_text(f"waybill,destination\n{LABELS['PRE'][0]},Qicun\n", encoding="utf-8")
    (folder / "scenarios.plan.toml").write_text(PLAN, encoding="utf-8")
    (folder / "camera").mkdir()
    path = derive_config(REPO / "configs" / "county-24.toml", folder / "line.toml", {
        "line": {"chutes": CHUTES, "end_chute": END, "chute_width_m": 0.6},
        "plc": {"port": port, **plc_keys}, "camera": {"folder": str(folder / "camera")},
        "records": {"folder": str(folder / "records")},
        "plan": {"file": str(folder / "scenarios.plan.toml"), "watch": False}, "screen": {"enabled": False}})
    return load_config(path)


# -- the two PLCs, one interface ---------------------------------------------------------------------
class SimulatedPlc:
    """sim_plc.plc.SimPlc, driven through its documented entry points."""

    def __init__(self, config, port: int):
        self.config, self.port, self.boot_id = config, port, 1
        self.plc: SimPlc | None = None

    async def start(self) -> None:
        plc = self.config["plc"]
        self.plc = SimPlc(self.config.geometry, port=self.port, regmap=RegisterMap(plc["plc_base"], plc["edge_base"]),
                          heartbeat_timeout_s=plc["heartbeat_timeout_ms"] / 1000, boot_id=self.boot_id,
                          unit=plc["unit"])
        await self.plc.start()

    async def stop(self) -> None:
        await self.plc.stop()

    async def scan(self) -> int:
        return self.plc.model.scan().tracking

    def set_chute_full(self, chute: int, on: bool) -> None:
        self.plc.model.set_chute_full(chute, on)

    def set_chute_fault(self, chute: int, on: bool) -> None:
        self.plc.model.set_chute_fault(chute, on)

    def jam(self, position_m: float) -> None:
        self.plc.model.jam(position_m)

    def clear(self) -> None:
        self.plc.model.clear()

    async def restart(self, down_s: float) -> None:
        await self.plc.restart(down_s)
        self.boot_id += 1

    async def memory_reset(self) -> None:
        """A PLC that keeps nothing over a start: a new one on the same port, the same boot id,
        tracking numbers from 1 again."""
        await self.plc.stop()
        await self.start()


class DocumentPlc:
    """tests/edge/doc_plc.py, set up with the line config's numbers."""

    def __init__(self, config, port: int):
        g = config.geometry
        self.line = Line(belt_speed_m_s=g.belt_speed_m_s, switch_time_s=g.switch_time_s, plc_margin_s=g.plc_margin_s,
                         chutes=tuple((c.number, c.position_m) for c in g.chutes), end_chute=g.end_chute,
                         encoder_mm_per_count=g.encoder_mm_per_count,
                         heartbeat_timeout_s=config["plc"]["heartbeat_timeout_ms"] / 1000)
        self.plc = DocPlc(port, boot_id=1, line=self.line)

    async def start(self) -> None:
        await self.plc.__aenter__()

    async def stop(self) -> None:
        await self.plc.__aexit__(None, None, None)

    async def scan(self) -> int:
        return await self.plc.scan()

    def set_chute_full(self, chute: int, on: bool) -> None:
        self.plc.set_chute_full(chute, on)

    def set_chute_fault(self, chute: int, on: bool) -> None:
        self.plc.set_chute_fault(chute, on)

    def jam(self, position_m: float) -> None:
        self.plc.jam(position_m)

    def clear(self) -> None:
        self.plc.clear()

    async def restart(self, down_s: float) -> None:
        await self.plc.restart(down_s)

    async def memory_reset(self) -> None:
        await self.plc.forget_everything()


PLCS = {"sim": SimulatedPlc, "doc": DocumentPlc}


# -- what the PLC shows ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Confirmed:
    epoch: int
    boot: int
    seq: int
    tracking: int
    chute: int
    result: int


class PlcWatch:
    """A Modbus client of its own reading the PLC block and the controller block as the PLC holds
    them, like a line's SCADA. An epoch is one numbering: it starts with every new BOOT_ID and
    whenever the sequence numbers start again under the same one (a memory reset)."""

    POLL_S = 0.01

    def __init__(self, port: int, unit: int):
        self.port, self.unit = port, unit
        self.epoch, self.boot, self.head = 0, None, [0] * 16
        self.confirmed: list[Confirmed] = []
        self.scanned: dict[tuple[int, int], int] = {}                # (epoch, seq) -> tracking
        self.assigned: dict[tuple[int, int], tuple[int, int]] = {}    # (epoch, aseq) -> (tracking, chute)
        self.refusals: list[tuple[int, int, int]] = []               # (epoch, REFUSED, LAST_REFUSAL)
        self.states: set[int] = set()
        self.alive = False
        self.full = self.fault = self.disabled = frozenset()
        self.missed = 0
        self._last_confirm = self._last_scan = self._refused = self._taken = 0
        self._task = None

    async def __aenter__(self):
        self._task = asyncio.create_task(self._watch())
        await until(lambda: self.epoch > 0, 10.0)
        return self

    async def __aexit__(self, *exc):
        # pymodbus may lose a cancellation inside its own wait_for: never wait on it unbounded
        if await cancel_and_wait([self._task], 5.0):
            raise AssertionError("the PLC watch did not stop within 5 s of its cancellation")

    async def _watch(self) -> None:
        from pymodbus.client import AsyncModbusTcpClient
        from pymodbus.exceptions import ModbusException
        while True:
            client = AsyncModbusTcpClient("127.0.0.1", port=self.port, timeout=1.0, retries=0, reconnect_delay=0)
            try:
                if await bounded(client.connect(), 2.0):
                    polls = 0
                    while True:
                        await self._poll(client, polls)
                        polls += 1
                        await asyncio.sleep(self.POLL_S)
            except (ModbusException, OSError, TimeoutError, ValueError):
                pass                                       # the PLC went away: connect again
            finally:
                client.close()
            await asyncio.sleep(0.02)

    async def _read(self, client, address: int, count: int) -> list[int]:
        rr = await bounded(client.read_holding_registers(address, count=count, device_id=self.unit), 2.0)
        if rr.isError():
            raise ValueError(f"read of {count} registers at {address}: {rr}")
        return rr.registers

    async def _poll(self, client, polls: int) -> None:
        # The county line's bases, as doc_plc's register table has them: PLC block 0, controller block 300.
        w = await self._read(client, 0, SCAN_RING + SLOTS * SLOT_WORDS)
        if w[VERSION] != 1:
            return

        def u(at: int) -> int:
            return join(w[at], w[at + 1])
        boot, scan_seq, confirm_seq, taken = w[BOOT_ID], u(SCAN_SEQ), u(CONFIRM_SEQ), u(ASSIGN_TAKEN)
        if boot != self.boot or scan_seq < self._last_scan or confirm_seq < self._last_confirm:
            self.epoch, self.boot = self.epoch + 1, boot
            self._last_confirm = self._last_scan = self._refused = self._taken = 0
        self.head = w[:16]
        self.alive = bool(w[FLAGS] & 1)
        self.states.add(w[LINE_STATE])
        for seq in range(self._last_scan + 1, scan_seq + 1):
            at = SCAN_RING + (seq - 1) % SLOTS * SLOT_WORDS
            if u(at) == seq:
                self.scanned[(self.epoch, seq)] = u(at + 2)
        self._last_scan = scan_seq
        if w[REFUSED] != self._refused:
            self._refused = w[REFUSED]
            self.refusals.append((self.epoch, w[REFUSED], w[LAST_REFUSAL]))
        rest = await self._read(client, CONFIRM_RING, SLOTS * SLOT_WORDS + 24)
        for seq in range(self._last_confirm + 1, confirm_seq + 1):
            s = rest[(seq - 1) % SLOTS * SLOT_WORDS:][:SLOT_WORDS]
            if join(s[0], s[1]) == seq:
                self.confirmed.append(Confirmed(self.epoch, boot, seq, join(s[2], s[3]), s[4], s[5]))
            else:
                self.missed += 1
        self._last_confirm = confirm_seq
        bits = rest[SLOTS * SLOT_WORDS:]
        self.full, self.fault, self.disabled = (frozenset(chutes_of(bits[i:i + 8])) for i in (0, 8, 16))
        if taken != self._taken or polls % 5 == 0:
            ring = await self._read(client, EDGE + ASSIGN_RING, SLOTS * SLOT_WORDS)
            for slot in range(SLOTS):
                s = ring[slot * SLOT_WORDS:(slot + 1) * SLOT_WORDS]
                aseq = join(s[0], s[1])
                if aseq:
                    self.assigned.setdefault((self.epoch, aseq), (join(s[2], s[3]), s[4]))
            self._taken = taken

    def u32(self, offset: int) -> int:
        return join(self.head[offset], self.head[offset + 1])

    # -- what the scenarios ask ----------------------------------------------------------------------
    def outcomes(self, trackings, epoch: int | None = None) -> dict[int, tuple[int, str] | list]:
        """tracking -> (chute, result name) of its one confirmation (every confirmation if not one)."""
        got: dict[int, list] = {t: [] for t in trackings}
        for c in self.confirmed:
            if c.tracking in got and (epoch is None or c.epoch == epoch):
                got[c.tracking].append((c.chute, Result(c.result).name))
        return {t: v[0] if len(v) == 1 else v for t, v in got.items()}

    def held(self, trackings, epoch: int) -> dict[int, list[int]]:
        """tracking -> the chutes of every assignment for it the PLC's controller block held."""
        got: dict[int, list[int]] = {t: [] for t in trackings}
        for (e, _), (tracking, chute) in sorted(self.assigned.items()):
            if e == epoch and tracking in got:
                got[tracking].append(chute)
        return got

    def has_confirmed(self, trackings, epoch: int) -> bool:
        done = {c.tracking for c in self.confirmed if c.epoch == epoch}
        return set(trackings) <= done


# -- the network -------------------------------------------------------------------------------------------
class Relay:
    """Modbus TCP from the controller to the PLC, passed through; `stalled()` holds what the
    controller sends for a while, as a switch that stops forwarding does. A PLC that drops its
    connections drops the controller's."""

    def __init__(self, plc_port: int):
        self.plc_port, self.port = plc_port, free_port()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._writers: set = set()
        self._server = None

    async def __aenter__(self):
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc):
        self._flowing.set()
        self._server.close()
        for writer in list(self._writers):
            writer.close()

    async def _serve(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.plc_port)
        except OSError:
            writer.close()
            return
        ends = {writer, up_writer}
        self._writers |= ends
        pipes = [asyncio.create_task(self._pipe(reader, up_writer, held=True)),
                 asyncio.create_task(self._pipe(up_reader, writer, held=False))]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            for end in ends:
                end.close()
            self._writers -= ends

    async def _pipe(self, reader, writer, held: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(4096):
                if held:
                    await self._flowing.wait()
                writer.write(data)
                await writer.drain()

    @contextlib.asynccontextmanager
    async def stalled(self):
        self._flowing.clear()
        try:
            yield
        finally:
            self._flowing.set()


# -- a line: PLC, network, controller --------------------------------------------------------------------
class SortingLine:
    def __init__(self, config, plc, watch: PlcWatch, relay: Relay, camera):
        self.config, self.plc, self.watch, self.relay, self.camera = config, plc, watch, relay, camera
        self.controller = self._stop = self._run = None

    async def start_controller(self) -> None:
        """The controller as `sortline run` builds it, running once the PLC sees its heartbeat."""
        self.controller = build_controller(self.config)
        self._stop = asyncio.Event()
        self._run = asyncio.create_task(self.controller.run(self._stop))
        await until(lambda: self.controller.state.report.state.value == "running", 60.0)
        await self.alive()

    async def stop_controller(self) -> None:
        run, self._run = self._run, None
        if run is not None:
            self._stop.set()
            try:
                done, _ = await asyncio.wait({run}, timeout=30)
                if not done:
                    await cancel_and_wait([run], 5.0)
                    raise AssertionError("the controller did not stop within 30 s of its stop event")
                run.result()
            finally:
                self.controller.records.close()

    async def parcel(self, label: str | None) -> int:
        """A parcel at the photo-eye; the camera's image of it is in the folder before the
        controller can have seen the scan event."""
        tracking = await self.plc.scan()
        text = LABELS[label][0]
        if text is not None:
            part = self.camera / f".{tracking}.part"
            part.write_bytes(label_png(text))
            os.replace(part, self.camera / f"{tracking}.png")
        return tracking

    async def stream(self, labels, every_s: float) -> list[int]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        trackings = []
        for i, label in enumerate(labels):
            await asyncio.sleep(max(0.0, start + i * every_s - loop.time()))
            trackings.append(await self.parcel(label))
        return trackings

    async def confirmed(self, trackings, epoch: int | None = None, timeout_s: float = 8.0) -> None:
        epoch = epoch or self.watch.epoch
        await until(lambda: self.watch.has_confirmed(trackings, epoch), timeout_s)

    async def held(self, trackings, timeout_s: float = 5.0) -> None:
        """Until the PLC's controller block holds an assignment for each."""
        await until(lambda: all(self.watch.held(trackings, self.watch.epoch).values()), timeout_s)

    async def alive(self, timeout_s: float = 10.0) -> None:
        await until(lambda: self.watch.alive, timeout_s)


@pytest.fixture(params=sorted(PLCS))
def kind(request) -> str:
    return request.param


@contextlib.asynccontextmanager
async def sorting_line(kind: str, folder, **plc_keys):
    plc_port = free_port()
    relay = Relay(plc_port)
    config = line_config(folder, relay.port, **plc_keys)
    plc = PLCS[kind](config, plc_port)
    await plc.start()
    try:
        async with relay, PlcWatch(plc_port, config["plc"]["unit"]) as watch:
            line = SortingLine(config, plc, watch, relay, folder / "camera")
            try:
                async with asyncio.timeout(SCENARIO_S):
                    await line.start_controller()
                    yield line
            finally:
                await line.stop_controller()
    finally:
        await plc.stop()


def expected(labels, trackings, result=DIVERTED) -> dict[int, tuple[int, str]]:
    return {t: (LABELS[label][1], result.name) for t, label in zip(trackings, labels)}


# -- the scenarios ----------------------------------------------------------------------------------------------
async def test_a_stream_is_decided_once_and_confirmed_into_its_chutes(kind, tmp_path):
    labels = MIX * 5
    async with sorting_line(kind, tmp_path) as line:
        trackings = await line.stream(labels, every_s=0.1)       # 36,000 parcels an hour
        await line.confirmed(trackings)
        watch = line.watch
        assert watch.outcomes(trackings) == expected(labels, trackings)
        assert watch.held(trackings, watch.epoch) == {t: [LABELS[lb][1]] for t, lb in zip(trackings, labels)}
        assert sorted(aseq for _, aseq in watch.assigned) == list(range(1, len(labels) + 1))
        assert watch.refusals == [] and watch.missed == 0


async def test_an_assignment_after_the_decision_point_is_refused_late(kind, tmp_path):
    # The network stalls longer than the 400 ms to the decision point, but within the link's
    # timeout and the PLC's heartbeat timeout: only the assignment is late.
    async with sorting_line(kind, tmp_path, timeout_ms=1500, heartbeat_timeout_ms=2000) as line:
        before = await line.stream(["YTO", "JT"], every_s=0.1)
        await line.held(before)
        async with line.relay.stalled():
            late = await line.parcel("SF")
            await asyncio.sleep(0.6)
        after = await line.stream(["PRE", "JD"], every_s=0.1)
        await line.confirmed([*before, late, *after])
        watch = line.watch
        assert watch.outcomes([*before, *after]) == expected(["YTO", "JT", "PRE", "JD"], [*before, *after])
        assert watch.outcomes([late]) == {late: (END, LATE.name)}
        assert watch.held([late], watch.epoch) == {late: [4]}          # it came, and was refused
        assert watch.refusals == [(watch.epoch, 1, Refusal.LATE)]


async def test_full_faulted_and_disabled_chutes_get_no_parcel(kind, tmp_path):
    async with sorting_line(kind, tmp_path) as line:
        link = line.controller.link
        line.plc.set_chute_full(4, True)
        await until(lambda: 4 in line.watch.full and 4 in link.chute_full, 5.0)
        overflow = await line.stream(["SF", "SF", "SF"], every_s=0.1)
        await line.confirmed(overflow)
        assert line.watch.held(overflow, line.watch.epoch) == {t: [5] for t in overflow}
        assert line.watch.outcomes(overflow) == {t: (5, DIVERTED.name) for t in overflow}

        line.plc.set_chute_full(4, False)
        await until(lambda: 4 not in line.watch.full and 4 not in link.chute_full, 5.0)
        # Assigned while their chutes were available; full, faulted or disabled before the diverters are due.
        due = await line.stream(["SF", "JT", "JD"], every_s=0.03)
        await line.held(due)
        assert line.watch.held(due, line.watch.epoch) == dict(zip(due, [[4], [3], [5]]))
        line.plc.set_chute_full(4, True)
        line.plc.set_chute_fault(3, True)
        await line.controller.set_chute_enabled(5, False)
        await line.confirmed(due)
        watch = line.watch
        assert (watch.full, watch.fault, watch.disabled) == ({4}, {3}, {5})
        assert watch.outcomes(due) == {t: (END, UNAVAILABLE.name) for t in due}
        assert watch.refusals == []


async def test_a_silent_controller_gets_every_parcel_sent_to_the_end_chute(kind, tmp_path):
    async with sorting_line(kind, tmp_path) as line:
        watch = line.watch
        committed = await line.parcel("JD")                 # chute 5: lands 1.35 s after the scan
        await line.held([committed])
        await asyncio.sleep(0.5)                            # past its decision point (0.4 s)
        line.controller.link.hold_heartbeat(True)
        await until(lambda: not watch.alive, 5.0)
        silent = await line.stream(["SF", "JT", "PRE"], every_s=0.1)
        await line.confirmed([committed, *silent])
        # Assigned as usual, and sent to the end chute all the same: never act on a stale decision.
        assert watch.held(silent, watch.epoch) == {t: [c] for t, c in zip(silent, [4, 3, 1])}
        assert watch.outcomes(silent) == {t: (END, NO_HEARTBEAT.name) for t in silent}
        assert watch.outcomes([committed]) == {committed: (5, DIVERTED.name)}

        line.controller.link.hold_heartbeat(False)
        await line.alive(5.0)
        again = await line.stream(["SF", "YTO"], every_s=0.1)
        await line.confirmed(again)
        assert watch.outcomes(again) == expected(["SF", "YTO"], again)
        assert watch.refusals == []


async def test_a_restarted_controller_assigns_above_every_aseq_the_plc_holds(kind, tmp_path):
    async with sorting_line(kind, tmp_path) as line:
        watch = line.watch
        first = await line.stream(MIX, every_s=0.1)
        await line.held(first)
        await asyncio.sleep(0.5)                    # all past their decision points, acknowledged
        await line.stop_controller()
        await line.start_controller()
        second = await line.stream(MIX, every_s=0.1)
        await line.confirmed([*first, *second])
        assert watch.outcomes([*first, *second]) == expected(MIX * 2, [*first, *second])
        aseq_of = {tracking: aseq for (_, aseq), (tracking, _) in watch.assigned.items()}
        assert len(watch.assigned) == len(aseq_of) == 2 * len(MIX)      # none assigned twice
        assert sorted(aseq_of[t] for t in second) == list(range(len(MIX) + 1, 2 * len(MIX) + 1))
        assert watch.refusals == []


async def test_after_a_plc_restart_the_controller_decides_again(kind, tmp_path):
    async with sorting_line(kind, tmp_path) as line:
        watch = line.watch
        first = await line.stream(["SF", "YTO", "JT", "PRE"], every_s=0.1)
        await line.confirmed(first)
        boot, epoch = watch.boot, watch.epoch
        on_belt = await line.stream([None, None, None], every_s=0.05)      # end chute: 1.6 s to land
        await line.held(on_belt)
        await line.plc.restart(0.3)
        await until(lambda: watch.boot == boot + 1, 5.0)
        await line.alive()
        # Both blocks were cleared: nothing scanned, confirmed, taken or refused under the new boot.
        assert [watch.u32(SCAN_SEQ), watch.u32(CONFIRM_SEQ), watch.u32(ASSIGN_TAKEN), watch.head[REFUSED]] == [0] * 4
        assert watch.held(on_belt, watch.epoch) == {t: [] for t in on_belt}
        after = await line.stream(["SF", "YTO", "JT", "PRE", "JD", None], every_s=0.1)
        await line.confirmed(after)
        assert min(after) > max(on_belt)                  # tracking numbers go on
        assert sorted(seq for e, seq in watch.scanned if e == watch.epoch) == list(range(1, len(after) + 1))
        assert watch.outcomes(after) == expected(["SF", "YTO", "JT", "PRE", "JD", None], after)
        assert watch.outcomes(first, epoch) == expected(["SF", "YTO", "JT", "PRE"], first)
        assert watch.outcomes(on_belt) == {t: [] for t in on_belt}      # forgotten: never confirmed
        assert watch.refusals == []


async def test_a_plc_that_forgot_its_numbering_gets_its_parcels_decided_again(kind, tmp_path):
    async with sorting_line(kind, tmp_path) as line:
        watch = line.watch
        first = await line.stream(["SF", "YTO", "JT", "PRE"], every_s=0.1)
        await line.confirmed(first)
        boot, epoch = watch.boot, watch.epoch
        await line.plc.memory_reset()
        await until(lambda: watch.epoch > epoch, 5.0)
        await line.alive()
        assert watch.boot == boot
        # The same tracking numbers for other parcels, with other labels.
        labels = ["JD", "PRE", "SF", "YTO"]
        again = await line.stream(labels, every_s=0.1)
        assert again == first
        await line.confirmed(again)
        assert watch.outcomes(again, watch.epoch) == expected(labels, again)
        assert watch.held(again, watch.epoch) == {t: [LABELS[lb][1]] for t, lb in zip(again, labels)}
        assert watch.refusals == []


async def test_parcels_at_a_cleared_jam_are_lost_and_the_others_go_on(kind, tmp_path):
    async with sorting_line(kind, tmp_path) as line:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        ahead = await line.parcel(None)                     # 2.6 m at the jam: past the jam zone
        await asyncio.sleep(max(0.0, t0 + 0.7 - loop.time()))
        jammed = await line.parcel("JT")                    # 1.2 m: in it (0.7-1.7 m)
        await asyncio.sleep(max(0.0, t0 + 1.2 - loop.time()))
        behind = await line.parcel("SF")                    # 0.2 m: before it, and before its decision point
        await asyncio.sleep(max(0.0, t0 + 1.3 - loop.time()))
        line.plc.jam(1.2)
        await until(lambda: State.JAM in line.watch.states, 2.0)
        await asyncio.sleep(0.4)
        line.plc.clear()
        await line.confirmed([ahead, jammed, behind])
        assert line.watch.outcomes([ahead, jammed, behind]) == {
            ahead: (END, DIVERTED.name), jammed: (0, LOST.name), behind: (4, DIVERTED.name)}
        assert line.watch.refusals == []
