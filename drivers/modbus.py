"""Modbus TCP backend: polls the PLC's scan ring in one request and writes assignment slots.

The pymodbus client is recreated after every failure rather than reconnected: a reused client
can hang after a broken connection, a new one cannot inherit that state.
"""
import asyncio
import logging
import time

from . import regmap as rm
from .link import Confirmation, PlcLink, ScanEvent
from .regmap import join_u32, split_u32

log = logging.getLogger("sortline.link")

CHUTE_STATE_EVERY = 25       # polls between reads of the chute bit fields


class ModbusError(ConnectionError):
    pass


class ModbusLink(PlcLink):
    def __init__(self, settings):
        super().__init__(settings)
        self.map = settings.regmap
        self._client = None
        self._io = asyncio.Lock()          # the client carries one request at a time
        self._tasks: list[asyncio.Task] = []
        self._scan_seq = None              # newest scan sequence number handled
        self._confirm_seq = None
        self._boot_id = None
        self._aseq = 0
        self._heartbeat = 0
        self.chute_full: set[int] = set()
        self.chute_fault: set[int] = set()
        self.line_state = None

    # -- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._poll_forever(), name="modbus-poll"),
                       asyncio.create_task(self._heartbeat_forever(), name="modbus-heartbeat")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except asyncio.CancelledError:
                pass
        self._drop_client()

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _connected_client(self):
        if self._client is None:
            from pymodbus.client import AsyncModbusTcpClient
            s = self.settings
            client = AsyncModbusTcpClient(s.host, port=s.port, timeout=s.timeout_s, retries=0,
                                          reconnect_delay=0)
            try:
                ok = await asyncio.wait_for(client.connect(), s.timeout_s * 2)
            except asyncio.TimeoutError:
                ok = False
            if not ok:
                client.close()
                raise ModbusError(f"cannot connect to PLC at {self.address}")
            self._client = client
            try:
                await self._resync()
            except Exception as exc:
                self._drop_client()
                raise exc if isinstance(exc, ModbusError) else ModbusError(f"start-up reads failed: {exc!r}")
        return self._client

    # -- requests -----------------------------------------------------------------------------
    async def _read(self, address: int, count: int) -> list[int]:
        async with self._io:
            client = await self._connected_client()
            try:
                rr = await asyncio.wait_for(
                    client.read_holding_registers(address, count=count, device_id=self.settings.unit),
                    self.settings.timeout_s)
            except Exception as exc:        # timeouts, resets, protocol errors: all mean a new client
                self._drop_client()
                raise ModbusError(f"read of {count} registers at {address} failed: {exc!r}") from exc
        if rr.isError() or len(rr.registers) != count:
            self.status.count("modbus_exception")
            raise ModbusError(f"PLC answered the read at {address} with {rr}")
        return rr.registers

    async def _write(self, address: int, values: list[int]) -> None:
        async with self._io:
            client = await self._connected_client()
            try:
                rr = await asyncio.wait_for(
                    client.write_registers(address, values, device_id=self.settings.unit),
                    self.settings.timeout_s)
            except Exception as exc:        # timeouts, resets, protocol errors: all mean a new client
                self._drop_client()
                raise ModbusError(f"write of {len(values)} registers at {address} failed: {exc!r}") from exc
        if rr.isError():
            self.status.count("modbus_exception")
            raise ModbusError(f"PLC refused the write at {address}: {rr}")

    async def _resync(self) -> None:
        """After (re)connecting: continue from what the PLC says was acknowledged and taken."""
        client = self._client
        dev = self.settings.unit
        head = await asyncio.wait_for(client.read_holding_registers(
            self.map.plc(0), count=rm.PLC_HEADER_WORDS, device_id=dev), self.settings.timeout_s)
        edge = await asyncio.wait_for(client.read_holding_registers(
            self.map.edge(0), count=rm.EDGE_BLOCK_WORDS, device_id=dev), self.settings.timeout_s)
        if head.isError() or edge.isError():
            raise ModbusError(f"PLC at {self.address} refused the start-up reads: {head} / {edge}")
        h, e = head.registers, edge.registers
        if h[rm.PLC_VERSION] != rm.INTERFACE_VERSION:
            raise ModbusError(f"PLC at {self.address} speaks interface version {h[rm.PLC_VERSION]}, "
                              f"this controller speaks {rm.INTERFACE_VERSION}: update the PLC program or sortline")
        plc_seq = join_u32(h[rm.PLC_SCAN_SEQ], h[rm.PLC_SCAN_SEQ + 1])
        acked = join_u32(e[rm.EDGE_SCAN_ACK], e[rm.EDGE_SCAN_ACK + 1])
        if self._scan_seq is None:
            # First start: events the ring still holds past our last acknowledgement are ours.
            self._scan_seq = acked if 0 <= plc_seq - acked <= rm.RING_SLOTS else plc_seq
            self._confirm_seq = join_u32(e[rm.EDGE_CONFIRM_ACK], e[rm.EDGE_CONFIRM_ACK + 1])
        self._boot_id = self._boot_id if self._boot_id is not None else h[rm.PLC_BOOT_ID]
        taken = join_u32(h[rm.PLC_ASSIGN_TAKEN], h[rm.PLC_ASSIGN_TAKEN + 1])
        ring = [join_u32(e[rm.EDGE_ASSIGN_RING + i * rm.SLOT_WORDS], e[rm.EDGE_ASSIGN_RING + i * rm.SLOT_WORDS + 1])
                for i in range(rm.RING_SLOTS)]
        self._aseq = max(self._aseq, taken, *ring)
        self.status.connected = True
        self.status.lost_since_wall = None
        self.status.plc_boot_id = h[rm.PLC_BOOT_ID]
        log.info("PLC link up: %s, boot id %d, scan seq %d", self.address, h[rm.PLC_BOOT_ID], plc_seq)

    def _link_failed(self, exc: Exception) -> None:
        if self.status.connected or self.status.lost_since_wall is None:
            self.status.lost_since_wall = time.time()
            log.error("PLC link lost: %s; check the cable and the PLC at %s; sorting resumes on its own "
                      "when it answers again", exc, self.address)
        self.status.connected = False
        self.status.last_error = str(exc)

    # -- polling ------------------------------------------------------------------------------
    async def _poll_forever(self) -> None:
        backoff = 0.05
        polls = 0
        while True:
            try:
                await self._poll_once(read_chutes=polls % CHUTE_STATE_EVERY == 0)
                polls += 1
                backoff = 0.05
                await asyncio.sleep(self.settings.poll_interval_s)
            except ConnectionError as exc:
                self._link_failed(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.reconnect_max_s)

    async def _poll_once(self, read_chutes: bool) -> None:
        w = await self._read(self.map.plc(0), rm.SCAN_READ_WORDS)
        now = asyncio.get_running_loop().time()
        boot = w[rm.PLC_BOOT_ID]
        if boot != self._boot_id:
            log.warning("PLC restarted (boot id %s -> %s): sequence numbers start again at 1", self._boot_id, boot)
            self.status.count("plc_restart")
            self._boot_id, self._scan_seq, self._confirm_seq = boot, 0, 0
            self.status.plc_boot_id = boot
        self.line_state = w[rm.PLC_LINE_STATE]
        self._take_scans(w, join_u32(w[rm.PLC_SCAN_SEQ], w[rm.PLC_SCAN_SEQ + 1]), now)
        confirm_seq = join_u32(w[rm.PLC_CONFIRM_SEQ], w[rm.PLC_CONFIRM_SEQ + 1])
        if confirm_seq != self._confirm_seq:
            ring = await self._read(self.map.plc(rm.PLC_CONFIRM_RING), rm.RING_SLOTS * rm.SLOT_WORDS)
            self._take_confirmations(ring, confirm_seq, now)
        if read_chutes:
            bits = await self._read(self.map.plc(rm.PLC_CHUTE_FULL), 2 * rm.CHUTE_BIT_WORDS)
            self.chute_full = rm.chutes_from_bits(bits[:rm.CHUTE_BIT_WORDS])
            self.chute_fault = rm.chutes_from_bits(bits[rm.CHUTE_BIT_WORDS:])

    def _ring_new(self, newest: int, last: int, what: str) -> range:
        if newest < last:
            log.warning("PLC %s sequence went back from %d to %d without a restart: resynchronising",
                        what, last, newest)
            self.status.count(f"{what}_seq_backwards")
            return range(0)
        if newest - last > rm.RING_SLOTS:
            lost = newest - last - rm.RING_SLOTS
            log.error("%d %s events overwritten in the PLC ring before they were read: "
                      "poll faster or enlarge the ring", lost, what)
            self.status.count(f"{what}_overrun", lost)
            last = newest - rm.RING_SLOTS
        return range(last + 1, newest + 1)

    def _take_scans(self, w: list[int], newest: int, now: float) -> None:
        for seq in self._ring_new(newest, self._scan_seq, "scan"):
            a = rm.PLC_SCAN_RING + (seq - 1) % rm.RING_SLOTS * rm.SLOT_WORDS
            slot = w[a:a + rm.SLOT_WORDS]
            if join_u32(slot[0], slot[1]) != seq:
                self.status.count("scan_slot_mismatch")
                log.error("scan ring slot for seq %d holds seq %d: event lost", seq, join_u32(slot[0], slot[1]))
                continue
            self.events.put_nowait(ScanEvent(seq, join_u32(slot[2], slot[3]), join_u32(slot[4], slot[5]), now))
        self._scan_seq = newest

    def _take_confirmations(self, ring: list[int], newest: int, now: float) -> None:
        for seq in self._ring_new(newest, self._confirm_seq, "confirm"):
            a = (seq - 1) % rm.RING_SLOTS * rm.SLOT_WORDS
            slot = ring[a:a + rm.SLOT_WORDS]
            if join_u32(slot[0], slot[1]) != seq:
                self.status.count("confirm_slot_mismatch")
                continue
            self.events.put_nowait(Confirmation(seq, join_u32(slot[2], slot[3]), slot[4], slot[5], now))
        self._confirm_seq = newest

    # -- commands -----------------------------------------------------------------------------
    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            if not self.status.connected:
                continue
            self._heartbeat = (self._heartbeat + 1) & 0xFFFF
            try:
                await self._write(self.map.edge(rm.EDGE_HEARTBEAT),
                                  [self._heartbeat, *split_u32(self._scan_seq or 0), *split_u32(self._confirm_seq or 0)])
            except ConnectionError as exc:
                self._link_failed(exc)

    async def assign(self, tracking: int, chute: int, reason: int) -> None:
        self._aseq += 1
        aseq = self._aseq
        slot = (aseq - 1) % rm.RING_SLOTS
        await self._write(self.map.edge(rm.EDGE_ASSIGN_RING + slot * rm.SLOT_WORDS),
                          [*split_u32(aseq), *split_u32(tracking), chute & 0xFFFF, reason & 0xFFFF])

    async def set_disabled_chutes(self, chutes: set[int]) -> None:
        await self._write(self.map.edge(rm.EDGE_CHUTE_DISABLE), rm.chute_bits(chutes))
