"""Modbus TCP backend: polls the PLC header and scan ring in one request, writes whole assignment slots.

The pymodbus client carries one request at a time, so every request goes through one lock and one
timeout. The client is created anew for every connection (see drivers.link).
"""
import asyncio

from pymodbus.exceptions import ModbusException

from . import regmap as rm
from .link import InterfaceMismatch, LinkError, OutsideWindow, PlcLink, PlcRefused
from .timed_awaits import answered, bounded
from .regmap import join_u32, split_u32

CHUTE_STATE_EVERY = 25       # polls between reads of the chute bit fields

EXCEPTION_HINTS = {
    1: "ILLEGAL FUNCTION: the PLC must serve holding registers (function codes 3 and 16)",
    2: "ILLEGAL DATA ADDRESS: check [plc] plc_base / edge_base against the PLC's memory layout",
    3: "ILLEGAL DATA VALUE",
    4: "DEVICE FAILURE: the PLC reports an internal fault",
    6: "DEVICE BUSY",
    10: "GATEWAY PATH UNAVAILABLE: check [plc] unit",
    11: "GATEWAY TARGET FAILED TO RESPOND: check [plc] unit",
}


def _scan_slots(words: list[int], at: int) -> list[tuple[int, int, int]]:
    slots = []
    for i in range(rm.RING_SLOTS):
        w = words[at + i * rm.SLOT_WORDS:at + (i + 1) * rm.SLOT_WORDS]
        slots.append((join_u32(w[0], w[1]), join_u32(w[2], w[3]), join_u32(w[4], w[5])))
    return slots


def _confirm_slots(words: list[int]) -> list[tuple[int, int, int, int]]:
    slots = []
    for i in range(rm.RING_SLOTS):
        w = words[i * rm.SLOT_WORDS:(i + 1) * rm.SLOT_WORDS]
        slots.append((join_u32(w[0], w[1]), join_u32(w[2], w[3]), w[4], w[5]))
    return slots


async def _never_again() -> bool:
    """pymodbus reconnects a client inside its next request when the connection has dropped; this link
    creates a new client instead, so that every lost connection is seen, counted and resynchronised."""
    return False


class ModbusLink(PlcLink):
    def __init__(self, settings):
        super().__init__(settings)
        self.map = settings.regmap
        self._client = None
        self._io = asyncio.Lock()          # the client carries one request at a time

    # -- connection -------------------------------------------------------------------------------
    async def _open(self) -> None:
        from pymodbus.client import AsyncModbusTcpClient
        s = self.settings
        self._client = AsyncModbusTcpClient(s.host, port=s.port, timeout=s.timeout_s, retries=0,
                                            reconnect_delay=0)
        self._fail_request_on_close(self._client)
        try:
            ok = await bounded(self._client.connect(), 2 * s.timeout_s)
        except TimeoutError:
            ok = False
        if not ok:
            raise LinkError(f"no TCP connection to {self.address} (refused or no answer)")
        self._client.ctx.connect = _never_again
        head = await self._read(self.map.plc(0), rm.PLC_HEADER_WORDS, "the PLC header")
        edge = await self._read(self.map.edge(0), rm.EDGE_BLOCK_WORDS, "the controller block")
        if head[rm.PLC_VERSION] != rm.INTERFACE_VERSION:
            raise InterfaceMismatch(
                f"register {self.map.plc(rm.PLC_VERSION)} should hold interface version {rm.INTERFACE_VERSION} but "
                f"holds {head[rm.PLC_VERSION]}: check [plc] plc_base, or update the PLC program or sortline")
        ring_aseqs = [join_u32(edge[rm.EDGE_ASSIGN_RING + i * rm.SLOT_WORDS],
                               edge[rm.EDGE_ASSIGN_RING + i * rm.SLOT_WORDS + 1]) for i in range(rm.RING_SLOTS)]
        self._first_contact(
            boot=head[rm.PLC_BOOT_ID],
            scan_seq=join_u32(head[rm.PLC_SCAN_SEQ], head[rm.PLC_SCAN_SEQ + 1]),
            scan_ack=join_u32(edge[rm.EDGE_SCAN_ACK], edge[rm.EDGE_SCAN_ACK + 1]),
            confirm_seq=join_u32(head[rm.PLC_CONFIRM_SEQ], head[rm.PLC_CONFIRM_SEQ + 1]),
            confirm_ack=join_u32(edge[rm.EDGE_CONFIRM_ACK], edge[rm.EDGE_CONFIRM_ACK + 1]),
            taken=join_u32(head[rm.PLC_ASSIGN_TAKEN], head[rm.PLC_ASSIGN_TAKEN + 1]),
            ring_aseqs=ring_aseqs)

    def _fail_request_on_close(self, client) -> None:
        """pymodbus lets a request wait out its whole timeout when the peer closes the connection; end
        it at once instead, so that a dropped cable costs one reconnect, not a timeout first."""
        ctx = client.ctx
        notify = ctx.callback_disconnected

        def closed(exc):
            pending = ctx.response_future
            if self._io.locked() and not pending.done():
                pending.set_exception(ConnectionError(f"the PLC closed the connection ({exc or 'no reason given'})"))
            notify(exc)
        ctx.callback_disconnected = closed

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- requests -----------------------------------------------------------------------------------
    async def _request(self, what: str, call):
        client = self._client
        if client is None:
            raise LinkError("not connected")
        async with self._io:
            if not client.connected:
                raise LinkError(f"the PLC closed the connection before {what}")
            try:
                rr = await answered(call(client), self.settings.timeout_s)
            except TimeoutError:
                self.status.anomaly("no_answer", f"PLC at {self.address} did not answer {what} within "
                                    f"{self.settings.timeout_s * 1000:.0f} ms")
                raise LinkError(f"no answer to {what} within {self.settings.timeout_s * 1000:.0f} ms") from None
            except (ModbusException, ConnectionError, OSError) as exc:
                raise LinkError(f"{what} failed: {exc}") from exc
        if rr.isError():
            code = getattr(rr, "exception_code", None)
            hint = EXCEPTION_HINTS.get(code, "") if code is not None else ""
            self.status.anomaly("modbus_exception", f"PLC at {self.address} answered {what} with Modbus exception "
                                f"{code}{': ' + hint if hint else ''}")
            raise PlcRefused(f"PLC answered {what} with Modbus exception {code}{': ' + hint if hint else ''}")
        return rr

    async def _read(self, address: int, count: int, what: str) -> list[int]:
        what = f"the read of {what} ({count} registers at {address})"
        rr = await self._request(what, lambda c: c.read_holding_registers(
            address, count=count, device_id=self.settings.unit))
        if len(rr.registers) != count:
            self.status.anomaly("modbus_short_answer", f"PLC answered {what} with {len(rr.registers)} registers")
            raise LinkError(f"PLC answered {what} with {len(rr.registers)} registers")
        return rr.registers

    async def _write(self, address: int, values: list[int], what: str) -> None:
        lo, hi = self.map.edge(0), self.map.edge(rm.EDGE_BLOCK_WORDS)
        if not lo <= address <= address + len(values) <= hi:
            raise OutsideWindow(f"write of {len(values)} registers at {address} is outside the controller block "
                                f"{lo}-{hi - 1}: not sent")
        if not all(0 <= v <= 0xFFFF for v in values):
            raise ValueError(f"register values must be 0..65535, got {values}")
        await self._request(f"the write of {what} ({len(values)} registers at {address})",
                            lambda c: c.write_registers(address, values, device_id=self.settings.unit))

    # -- polling ---------------------------------------------------------------------------------------
    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        polls = 0
        while True:
            w = await self._read(self.map.plc(0), rm.SCAN_READ_WORDS, "the PLC header and scan ring")
            now_s = loop.time()
            if w[rm.PLC_VERSION] != rm.INTERFACE_VERSION:
                self.status.anomaly("plc_block_invalid",
                                    f"register {self.map.plc(rm.PLC_VERSION)} holds {w[rm.PLC_VERSION]} instead of "
                                    f"interface version {rm.INTERFACE_VERSION}: PLC block ignored this poll")
            else:
                await self._take_block(w, now_s, read_chutes=polls % CHUTE_STATE_EVERY == 0)
            polls += 1
            await asyncio.sleep(self.settings.poll_interval_s)

    async def _take_block(self, w: list[int], now_s: float, read_chutes: bool) -> None:
        boot = w[rm.PLC_BOOT_ID]
        self._plc_heartbeat_seen(w[rm.PLC_HEARTBEAT], now_s)
        self.line_state = w[rm.PLC_LINE_STATE]
        self._take_scans(boot, join_u32(w[rm.PLC_SCAN_SEQ], w[rm.PLC_SCAN_SEQ + 1]),
                         _scan_slots(w, rm.PLC_SCAN_RING), now_s)
        confirm_seq = join_u32(w[rm.PLC_CONFIRM_SEQ], w[rm.PLC_CONFIRM_SEQ + 1])
        if boot != self.confirms.boot or confirm_seq != self.confirms.last:
            ring = await self._read(self.map.plc(rm.PLC_CONFIRM_RING), rm.RING_SLOTS * rm.SLOT_WORDS,
                                    "the confirmation ring")
            self._take_confirmations(boot, confirm_seq, _confirm_slots(ring), asyncio.get_running_loop().time())
        if read_chutes:
            bits = await self._read(self.map.plc(rm.PLC_CHUTE_FULL), 2 * rm.CHUTE_BIT_WORDS, "the chute states")
            self.chute_full = rm.chutes_from_bits(bits[:rm.CHUTE_BIT_WORDS])
            self.chute_fault = rm.chutes_from_bits(bits[rm.CHUTE_BIT_WORDS:])

    # -- commands ----------------------------------------------------------------------------------------
    async def _send_heartbeat(self, heartbeat: int, scan_ack: int, confirm_ack: int) -> None:
        await self._write(self.map.edge(rm.EDGE_HEARTBEAT), [heartbeat, *split_u32(scan_ack), *split_u32(confirm_ack)],
                          "the heartbeat")

    async def _send_assignment(self, slot: int, aseq: int, tracking: int, chute: int, reason: int) -> None:
        await self._write(self.map.edge(rm.EDGE_ASSIGN_RING + slot * rm.SLOT_WORDS),
                          [*split_u32(aseq), *split_u32(tracking), chute, reason], f"assignment {aseq}")

    async def _send_disabled(self, chutes: set[int]) -> None:
        await self._write(self.map.edge(rm.EDGE_CHUTE_DISABLE), rm.chute_bits(chutes), "the disabled chutes")
