"""How `sortline plc-check` reaches a PLC: one peer per protocol, reading as the controller reads.

A peer opens the connection (or says why there is none and what to check), checks the layout the
controller depends on (the register blocks; the OPC UA variables and who may write them), polls
snapshots as the controller polls, timing every request, and writes the controller heartbeat only
when asked. The OPC UA peer stands on the controller's own session set-up (drivers/opcua.py) and
is created only for an OPC UA endpoint: asyncua is imported then.
"""
import asyncio
import socket
import struct
import time
from dataclasses import dataclass

from pymodbus.exceptions import ModbusException

from . import opcua_layout as lay
from . import regmap as rm
from .modbus import CHUTE_STATE_EVERY, EXCEPTION_HINTS, _confirm_slots, _never_again, _scan_slots
from .regmap import join_u32, split_u32
from .timed_awaits import answered, bounded, cancel_and_wait

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"
CONNECT_S = 2.0
FIRST_ANSWER_S = 1.0             # the first read may wait for a PLC that is busy; later ones are timed
PROBE_WAIT_S = 0.5
PROBE_TID = 0x5C5C


@dataclass
class Check:
    name: str
    status: str
    found: str
    expected: str = ""
    check: str = ""               # what to look at (empty for a PASS)


@dataclass(frozen=True)
class Snapshot:
    """One poll of the PLC's values, as the controller sees them."""
    t_s: float                                    # monotonic time the answer arrived
    version: int
    heartbeat: int
    line_state: int
    boot: int
    hb_seen: int
    flags: int
    scan_seq: int | None = None                   # None: the poll could not carry the scan ring
    scan_slots: tuple[int, ...] = ()              # the seq in each slot
    confirm_seq: int | None = None
    confirm_slots: tuple[int, ...] | None = None  # read in this poll
    ring_boots: tuple[int, ...] = ()              # OPC UA: the boot ids inside ScanEvents, ConfirmEvents


class LinkTrouble(Exception):
    """A request did not get the answer it needs."""


class NoAnswer(LinkTrouble):
    pass


class Refused(LinkTrouble):
    """A Modbus exception answer (code None: an answer of the wrong length)."""

    def __init__(self, code: int | None, text: str = ""):
        self.code = code
        name = EXCEPTION_HINTS.get(code, "").split(":")[0] if code is not None else ""
        super().__init__(text or f"exception {code or 0:02X}{' ' + name if name else ''}")


class Unreachable(Exception):
    """No PLC to talk to: what was found and what to check."""

    def __init__(self, found: str, check: str):
        super().__init__(found)
        self.found, self.check = found, check


def unit_hint(unit: int) -> str:
    return (f"the PLC's unit id against [plc] unit (--unit {unit}): Modbus servers differ, some answer every unit id, "
            f"others only their own and refuse or ignore the rest")


BLOCK_HINTS = {
    1: "the PLC must answer function code 3 (read holding registers) on this port",
    2: "the PLC's Modbus server must map every register of the block (docs/plc-interface.md); if the block starts "
       "elsewhere, set [plc] plc_base / edge_base (--plc-base, --edge-base)",
    3: "the PLC refuses a read this long: the controller reads 112 registers in one request (the Modbus limit is 125)",
    # pymodbus' own server answers 04 to a unit id it does not serve
    4: "the PLC reports an internal fault; some servers answer it to a unit id they do not serve: check [plc] unit "
       "(--unit) too",
}
MODBUS_NAMES = {"version": ("VERSION", rm.PLC_VERSION), "heartbeat": ("PLC_HEARTBEAT", rm.PLC_HEARTBEAT),
                "line_state": ("LINE_STATE", rm.PLC_LINE_STATE), "boot": ("BOOT_ID", rm.PLC_BOOT_ID),
                "scan_seq": ("SCAN_SEQ", rm.PLC_SCAN_SEQ), "confirm_seq": ("CONFIRM_SEQ", rm.PLC_CONFIRM_SEQ),
                "hb_seen": ("EDGE_HB_SEEN", rm.PLC_EDGE_HB_SEEN), "flags": ("FLAGS", rm.PLC_FLAGS)}


def block_hint(exc: LinkTrouble) -> str:
    if isinstance(exc, Refused) and exc.code in BLOCK_HINTS:
        return BLOCK_HINTS[exc.code]
    if isinstance(exc, NoAnswer):
        return "the connection to the PLC and its communication load: it stopped answering"
    return "the PLC's Modbus mapping against docs/plc-interface.md"


class ModbusPeer:
    protocol, server = "Modbus TCP", "a Modbus TCP server"
    pace = "as the controller polls, the next read {ms} ms after each answer"
    layout_names = ("plc_block", "controller_block")
    extra_names: tuple[str, ...] = ()

    def __init__(self, settings):
        self.s, self.map = settings, settings.regmap
        self.address = f"{settings.host}:{settings.port}"
        self.target = (f"Modbus TCP {self.address}, unit {settings.unit}, PLC block at register {self.map.plc_base}, "
                       f"controller block at {self.map.edge_base}")
        self.latencies_s: list[float] = []
        self.written: list[str] = []
        self._client = None
        # Well past the controller's own timeout, so that a slow PLC is measured rather than cut off.
        self._bound_s = max(FIRST_ANSWER_S, 5 * settings.timeout_s)
        self._poll_words: int | None = rm.SCAN_READ_WORDS
        self._readable = {"confirm": True, "chutes": True}
        self._confirm_seen: tuple[int, int] | None = None      # (BOOT_ID, CONFIRM_SEQ) of the last ring read
        self._polls = self._beats = 0
        self._words: list[list[int]] = []         # the first and the newest poll

    def name(self, field: str) -> str:
        if field == "edge_heartbeat":
            a = self.map.edge(rm.EDGE_HEARTBEAT)
            return f"EDGE_HEARTBEAT (register {a}; the controller writes {a}-{a + 4} in one request)"
        label, offset = MODBUS_NAMES[field]
        return f"{label} (register {self.map.plc(offset)})"

    async def open(self) -> str:
        from pymodbus.client import AsyncModbusTcpClient
        s = self.s
        self._client = AsyncModbusTcpClient(s.host, port=s.port, timeout=self._bound_s + 1, retries=0,
                                            reconnect_delay=0)
        try:
            ok = await bounded(self._client.connect(), CONNECT_S)
        except TimeoutError:
            ok = False
        if not ok:
            await self.close()
            raise Unreachable(*(await tcp_trouble(s.host, s.port) or (
                f"the TCP connection to {self.address} failed once and opened on a second attempt",
                "the network between this PC and the PLC, and whether the PLC has a connection free")))
        self._client.ctx.connect = _never_again      # a lost connection ends the check's reads, as the link's
        t0 = time.perf_counter()
        try:
            await self._read(self.map.plc(0), rm.PLC_HEADER_WORDS, FIRST_ANSWER_S)
        except Refused as exc:
            if exc.code in (10, 11):
                raise Unreachable(f"the PLC answered a read for unit id {s.unit} with {exc}", unit_hint(s.unit)) \
                    from None
            return f"a Modbus TCP server at {self.address} answered unit id {s.unit}, refusing the first read ({exc})"
        except NoAnswer:
            await self.close()
            raise Unreachable(*await probe(s.host, s.port, s.unit, self.map.plc(0))) from None
        return f"a Modbus TCP server at {self.address} answered unit id {s.unit} in " \
               f"{(time.perf_counter() - t0) * 1000:.1f} ms"

    async def _read(self, address: int, count: int, bound_s: float | None = None) -> list[int]:
        if self._client is None:
            raise NoAnswer("not connected")
        bound_s = bound_s or self._bound_s
        t0 = time.perf_counter()
        try:
            rr = await answered(self._client.read_holding_registers(address, count=count, device_id=self.s.unit),
                                bound_s)
        except TimeoutError:
            raise NoAnswer(f"no answer to a read of {count} registers at {address} within {bound_s * 1000:.0f} ms") \
                from None
        except (ModbusException, ConnectionError, OSError) as exc:
            raise NoAnswer(f"the read of {count} registers at {address} failed: {exc}") from exc
        self.latencies_s.append(time.perf_counter() - t0)
        if rr.isError():
            raise Refused(getattr(rr, "exception_code", None))
        if len(rr.registers) != count:
            raise Refused(None, f"an answer of {len(rr.registers)} registers")
        return list(rr.registers)

    async def layout(self) -> list[Check]:
        b, e = self.map.plc_base, self.map.edge_base
        reads = (("header", 0, rm.PLC_HEADER_WORDS), ("poll", 0, rm.SCAN_READ_WORDS),
                 ("confirm", rm.PLC_CONFIRM_RING, rm.RING_SLOTS * rm.SLOT_WORDS),
                 ("chutes", rm.PLC_CHUTE_FULL, 2 * rm.CHUTE_BIT_WORDS),
                 ("disabled", rm.PLC_CHUTE_DISABLED, rm.CHUTE_BIT_WORDS))
        failed: dict[str, tuple[str, LinkTrouble]] = {}
        for what, offset, count in reads:
            try:
                await self._read(self.map.plc(offset), count)
            except LinkTrouble as exc:
                failed[what] = (f"{count} registers at {self.map.plc(offset)}: {exc}", exc)
        self._poll_words = None if "header" in failed else rm.PLC_HEADER_WORDS if "poll" in failed \
            else rm.SCAN_READ_WORDS
        self._readable = {"confirm": "confirm" not in failed, "chutes": "chutes" not in failed}
        expected = (f"registers {b}-{b + rm.PLC_BLOCK_WORDS - 1} ({rm.PLC_BLOCK_WORDS}) answer function code 3 "
                    f"without an exception; {b}-{b + rm.SCAN_READ_WORDS - 1} in one read, the controller's poll")
        if failed:
            plc = Check("plc_block", FAIL, "; ".join(text for text, _ in failed.values()), expected,
                        block_hint(next(iter(failed.values()))[1]))
        else:
            plc = Check("plc_block", PASS, f"the controller's reads answered: 16 and 112 registers at {b}, 96 at "
                        f"{b + rm.PLC_CONFIRM_RING}, 16 at {b + rm.PLC_CHUTE_FULL}; and 8 at "
                        f"{b + rm.PLC_CHUTE_DISABLED}",
                        expected)
        expected = (f"registers {e}-{e + rm.EDGE_BLOCK_WORDS - 1} ({rm.EDGE_BLOCK_WORDS}) answer one read, as the "
                    f"controller reads them at connect")
        try:
            await self._read(e, rm.EDGE_BLOCK_WORDS)
            edge = Check("controller_block", PASS, f"{rm.EDGE_BLOCK_WORDS} registers at {e} answered in one read",
                         expected)
        except LinkTrouble as exc:
            edge = Check("controller_block", FAIL, f"{rm.EDGE_BLOCK_WORDS} registers at {e}: {exc}", expected,
                         block_hint(exc))
        return [plc, edge]

    async def poll(self) -> Snapshot:
        """What the controller reads in one poll: the header and scan ring, the confirmation ring when
        CONFIRM_SEQ or BOOT_ID moved, the chute states every CHUTE_STATE_EVERY polls."""
        if self._poll_words is None:
            raise LinkTrouble(f"the PLC header ({rm.PLC_HEADER_WORDS} registers at {self.map.plc_base}) cannot be read")
        w = await self._read(self.map.plc(0), self._poll_words)
        t_s = asyncio.get_running_loop().time()
        self._words = [self._words[0] if self._words else w, w]
        full = self._poll_words == rm.SCAN_READ_WORDS
        confirm_seq = join_u32(w[rm.PLC_CONFIRM_SEQ], w[rm.PLC_CONFIRM_SEQ + 1])
        confirm_slots = None
        seen = (w[rm.PLC_BOOT_ID], confirm_seq)
        if full and self._readable["confirm"] and seen != self._confirm_seen:
            ring = await self._read(self.map.plc(rm.PLC_CONFIRM_RING), rm.RING_SLOTS * rm.SLOT_WORDS)
            confirm_slots, self._confirm_seen = tuple(s[0] for s in _confirm_slots(ring)), seen
        if full and self._readable["chutes"] and self._polls % CHUTE_STATE_EVERY == 0:
            await self._read(self.map.plc(rm.PLC_CHUTE_FULL), 2 * rm.CHUTE_BIT_WORDS)
        self._polls += 1
        return Snapshot(t_s, w[rm.PLC_VERSION], w[rm.PLC_HEARTBEAT], w[rm.PLC_LINE_STATE], w[rm.PLC_BOOT_ID],
                        w[rm.PLC_EDGE_HB_SEEN], w[rm.PLC_FLAGS],
                        scan_seq=join_u32(w[rm.PLC_SCAN_SEQ], w[rm.PLC_SCAN_SEQ + 1]) if full else None,
                        scan_slots=tuple(s[0] for s in _scan_slots(w, rm.PLC_SCAN_RING)) if full else (),
                        confirm_seq=confirm_seq if full else None, confirm_slots=confirm_slots)

    async def version_hint(self) -> str | None:
        """Where the PLC block is when VERSION is not at plc_base. A block a register or a few off (a 1-based
        address in the PLC program: register 40001 is protocol address 0) shows 1, a ticking heartbeat and a
        boot id nearby."""
        if len(self._words) < 2 or self._words[0][rm.PLC_VERSION] == rm.INTERFACE_VERSION:
            return None
        first, last = self._words
        shift = next((k for k in range(1, 5) if first[k] == rm.INTERFACE_VERSION and last[k + 1] != first[k + 1]
                      and last[k + 3]), None)
        if shift is None and self.map.plc_base and last[0] != first[0] and last[2]:
            try:
                shift = -1 if await self._read(self.map.plc_base - 1, 1) == [rm.INTERFACE_VERSION] else None
            except LinkTrouble:
                shift = None
        if shift is None:
            return None
        plc, edge = self.map.plc_base + shift, self.map.edge_base + shift
        return (f"the PLC block seems to start at register {plc}, not {self.map.plc_base}: register {plc} holds "
                f"{rm.INTERFACE_VERSION} and a heartbeat ticks at {plc + 1}. A block {abs(shift)} off is usually a "
                f"1-based address in the PLC program (register 40001 is protocol address 0): move both blocks in the "
                f"PLC program, or, if the controller block moved with it, set [plc] plc_base = {plc} and "
                f"edge_base = {edge} (--plc-base {plc} --edge-base {edge})")

    def extra_checks(self, snaps) -> list[Check]:
        return []

    @property
    def poll_note(self) -> str:
        return "" if self._poll_words == rm.SCAN_READ_WORDS else \
            f"polls of the {rm.PLC_HEADER_WORDS}-register header: the controller's read of 112 fails"

    async def controller_values(self) -> tuple[int, int, int]:
        """EDGE_HEARTBEAT, SCAN_ACK and CONFIRM_ACK as the PLC holds them."""
        w = await self._read(self.map.edge(0), rm.EDGE_CONFIRM_ACK + 2)
        return w[rm.EDGE_HEARTBEAT], join_u32(*w[1:3]), join_u32(*w[3:5])

    async def write_heartbeat(self, heartbeat: int, scan_ack: int, confirm_ack: int) -> None:
        """The controller's heartbeat request: controller block 0-4 in one write (function code 16)."""
        address = self.map.edge(rm.EDGE_HEARTBEAT)
        self._beats += 1
        self.written[:] = [f"{self._beats} heartbeat writes to registers {address}-{address + 4} (EDGE_HEARTBEAT, "
                           f"then SCAN_ACK and CONFIRM_ACK as read)"]
        values = [heartbeat, *split_u32(scan_ack), *split_u32(confirm_ack)]
        try:
            rr = await answered(self._client.write_registers(address, values, device_id=self.s.unit), self._bound_s)
        except TimeoutError:
            raise NoAnswer(f"no answer to the heartbeat write within {self._bound_s * 1000:.0f} ms") from None
        except (ModbusException, ConnectionError, OSError) as exc:
            raise NoAnswer(f"the heartbeat write failed: {exc}") from exc
        if rr.isError():
            raise Refused(getattr(rr, "exception_code", None))

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


async def tcp_trouble(host: str, port: int) -> tuple[str, str] | None:
    """Why no TCP connection opens to host:port, and what to check (None: one opens)."""
    try:
        _, writer = await bounded(asyncio.open_connection(host, port), CONNECT_S)
    except ConnectionRefusedError:
        return (f"nothing listens on {host}:{port} (connection refused)",
                "the port ([plc] port, --port; Modbus TCP is usually 502, OPC UA 4840), that the PLC's server for "
                "this protocol is enabled, and the address")
    except TimeoutError:
        return (f"no TCP connection to {host}:{port} within {CONNECT_S:g} s",
                "the address, the cable and any firewall between this PC and the PLC")
    except socket.gaierror as exc:
        return f"the address {host} cannot be resolved ({exc.strerror})", "the PLC's address: [plc] host (--host, " \
            "--endpoint)"
    except OSError as exc:
        return f"no TCP connection to {host}:{port}: {exc.strerror or exc}", "the address and this PC's network"
    writer.close()
    return None


def _shown(data: bytes) -> str:
    return "'" + "".join(c if 32 <= ord(c) < 127 else "." for c in data[:40].decode("latin-1")) + "'"


async def _some(reader) -> tuple[bytes, bool]:
    """What the peer sends within PROBE_WAIT_S, and whether it closed the connection."""
    try:
        data = await bounded(reader.read(256), PROBE_WAIT_S)
    except TimeoutError:
        return b"", False
    except (ConnectionError, OSError):
        return b"", True
    return data, not data


async def probe(host: str, port: int, unit: int, address: int) -> tuple[str, str]:
    """What answers at host:port when a Modbus read got no answer (found, what to check). Sends one read
    of one register on a connection of its own."""
    port_hint = f"that {host}:{port} is the PLC's Modbus TCP server ([plc] port, --port; Modbus TCP is usually 502)"
    try:
        reader, writer = await bounded(asyncio.open_connection(host, port), CONNECT_S)
    except (OSError, TimeoutError):
        return f"{host}:{port} accepted a connection but answered no read, then accepted no second connection", \
            port_hint
    try:
        writer.write(struct.pack(">HHHBBHH", PROBE_TID, 0, 6, unit, 3, address, 1))
        data, closed = await _some(reader)
        if not data and not closed:
            # An HTTP server waits silently for the end of a request line: these four bytes end it. They are
            # never a whole Modbus frame, so a Modbus server only waits for more.
            writer.write(b"\r\n\r\n")
            data, closed = await _some(reader)
    finally:
        writer.close()
    # An HTTP server answers a request line it cannot parse with a status line, or (taking it for HTTP/0.9)
    # with a bare HTML page.
    if data.startswith(b"HTTP/") or b"<html" in data[:200].lower():
        first_line = data.split(b"\r")[0].split(b"\n")[0]
        return f"an HTTP server answers at {host}:{port} ({_shown(first_line)}), not Modbus TCP", port_hint
    if data[:4] == struct.pack(">HH", PROBE_TID, 0):
        return (f"a Modbus TCP server at {host}:{port} answered a second read but not the first within "
                f"{FIRST_ANSWER_S:g} s", "the PLC's communication load: other clients (HMI, SCADA), and whether it "
                "serves one connection at a time")
    if data:
        return f"{host}:{port} answers with bytes that are not Modbus TCP: {_shown(data)}", port_hint
    if closed:
        return (f"{host}:{port} closed the connection without answering a Modbus read",
                f"{port_hint}, and whether the PLC takes Modbus clients from this PC's address")
    return (f"no answer for unit id {unit}: the TCP connection to {host}:{port} opens, but a read of holding "
            f"registers gets no answer within {FIRST_ANSWER_S + 2 * PROBE_WAIT_S:g} s",
            f"{unit_hint(unit)}; and {port_hint}")


# -- OPC UA ---------------------------------------------------------------------------------------------
POLLED = ("Version", "Heartbeat", "LineState", "BootId", "EdgeHeartbeatSeen", "Flags", "ScanEvents", "ConfirmEvents")
OPCUA_NAMES = {"version": "Version", "heartbeat": "Heartbeat", "line_state": "LineState", "boot": "BootId",
               "scan_seq": "ScanEvents[1]", "confirm_seq": "ConfirmEvents[1]", "hb_seen": "EdgeHeartbeatSeen",
               "flags": "Flags"}


def opcua_peer(settings) -> "OpcUaPeer":
    """The OPC UA side; raises ValueError for security settings that cannot work (drivers/opcua.py)."""
    from .opcua import OpcUaLink

    class Session(OpcUaLink):
        """The link's connection, security and login, with their hints; the check takes the nodes and the
        subscription itself, one by one, so that a wrong value does not hide the rest."""
        async def _find_nodes(self, client) -> None:
            pass

        async def _read_start_state(self, client) -> None:
            pass

        async def _subscribe(self, client) -> None:
            pass
    return OpcUaPeer(Session(settings), OpcUaLink)


class OpcUaPeer:
    protocol, server = "OPC UA", "an OPC UA server"
    pace = ("a Read of the PLC's values {ms} ms after each answer; the controller subscribes instead, but each of "
            "its Writes takes such a round trip")
    layout_names = ("interface", "controller_access")
    extra_names = ("subscription",)

    def __init__(self, session, link_class):
        self.link, self._link_class, self.s = session, link_class, session.settings
        self.address = session.address
        self.target = f"OPC UA {self.address}, namespace {self.s.opcua.namespace}, security {self.s.opcua.security}"
        self.latencies_s: list[float] = []
        self.written: list[str] = []
        self._bound_s = max(FIRST_ANSWER_S, 5 * self.s.timeout_s)
        self._polled: list = []
        self._watcher: asyncio.Task | None = None
        self._notified: set[int] = set()          # heartbeat values the subscription delivered
        self._sub_problem = ""
        self._beats = 0

    def name(self, field: str) -> str:
        if field == "edge_heartbeat":
            return f"{lay.OBJECT}/{lay.EDGE_FOLDER}/Heartbeat"
        return f"{lay.OBJECT}/{lay.PLC_FOLDER}/{OPCUA_NAMES[field]}"

    async def open(self) -> str:
        from .link import LinkError
        t0 = time.perf_counter()
        try:
            await bounded(self.link._open(), 2 * self.s.connect_timeout_s)
        except (TimeoutError, LinkError) as exc:
            await self.link._close()
            trouble = await tcp_trouble(self.s.host, self.s.port)
            if trouble:
                raise Unreachable(*trouble) from None
            raise Unreachable(f"{self.address}: {exc or 'no OPC UA session within the time limit'}",
                              "that the endpoint is the PLC's OPC UA server (opc.tcp://HOST:PORT/PATH; OPC UA is "
                              "usually port 4840), and [plc] opcua_* against what the PLC offers") from None
        return f"an OPC UA session opened at {self.address} in {(time.perf_counter() - t0) * 1000:.0f} ms"

    async def _read(self, ids: list, attribute=None) -> list:
        from asyncua import ua
        t0 = time.perf_counter()
        try:
            dvs = await answered(self.link._client.uaclient.read_attributes(ids, attribute or ua.AttributeIds.Value),
                                 self._bound_s)
        except TimeoutError:
            raise NoAnswer(f"no answer to a Read within {self._bound_s * 1000:.0f} ms") from None
        except (ua.UaError, ConnectionError, OSError) as exc:
            raise NoAnswer(f"a Read failed: {exc!r}") from exc
        self.latencies_s.append(time.perf_counter() - t0)
        return dvs

    async def layout(self) -> list[Check]:
        from .link import LinkError
        from .opcua import VARIANT
        link, ns = self.link, self.s.opcua.namespace
        expected = (f"every variable of docs/plc-interface.md (OPC UA) under Objects/{lay.OBJECT} in namespace "
                    f"\"{ns}\", with its type, and the controller's subscription taken")
        remedy = "the PLC's OPC UA address space against docs/plc-interface.md, OPC UA"
        try:
            await self._link_class._find_nodes(link, link._client)
        except LinkError as exc:
            return [Check("interface", FAIL, str(exc), expected, remedy)]
        self._polled = [link._plc[n] for n in POLLED]
        problems = []
        try:
            for var, dv in zip(lay.PLC_VARS, await self._read([link._plc[v.name] for v in lay.PLC_VARS])):
                want, got = VARIANT[var.kind], dv.Value.VariantType if dv.Value is not None else None
                if dv.StatusCode is not None and not dv.StatusCode.is_good():
                    problems.append(f"{var.name} reads {dv.StatusCode.name}")
                elif got != want:
                    problems.append(f"{var.name} is {got.name if got else 'empty'}, not {want.name}")
                elif var.is_array and lay.check_array(var, dv.Value.Value):
                    problems.append(f"{var.name}: {lay.check_array(var, dv.Value.Value)}")
            await self._link_class._subscribe(link, link._client)
            self._watcher = asyncio.create_task(self._watch(), name="plc-check-subscription")
        except (LinkTrouble, LinkError) as exc:
            problems.append(str(exc))
        found = f"the {len(lay.PLC_VARS)} PLC and {len(lay.EDGE_VARS)} controller variables found"
        interface = Check("interface", FAIL, f"{found}; {'; '.join(problems)}", expected, remedy) if problems else \
            Check("interface", PASS, f"{found}, typed as documented; the controller's subscription taken", expected)
        return [interface, await self._access()]

    async def _access(self) -> Check:
        from asyncua import ua
        link = self.link
        nodes = [(lay.EDGE_FOLDER, v.name, link._edge[v.name]) for v in lay.EDGE_VARS] + \
            [(lay.PLC_FOLDER, v.name, link._plc[v.name]) for v in lay.PLC_VARS]
        expected = f"this user may write every variable under {lay.OBJECT}/{lay.EDGE_FOLDER}, none under " \
                   f"{lay.OBJECT}/{lay.PLC_FOLDER} (UserAccessLevel)"
        try:
            dvs = await self._read([n for *_, n in nodes], ua.AttributeIds.UserAccessLevel)
        except LinkTrouble as exc:
            return Check("controller_access", FAIL, f"the access levels cannot be read: {exc}", expected)
        mask = ua.AccessLevel.CurrentWrite.mask
        writable = {(f, n) for (f, n, _), dv in zip(nodes, dvs)
                    if dv.Value is not None and isinstance(dv.Value.Value, int) and dv.Value.Value & mask}
        locked = [n for f, n, _ in nodes if f == lay.EDGE_FOLDER and (f, n) not in writable]
        loose = [n for f, n, _ in nodes if f == lay.PLC_FOLDER and (f, n) in writable]
        if locked:
            return Check("controller_access", FAIL, f"this user may not write {', '.join(locked[:4])}"
                         f"{' and more' if len(locked) > 4 else ''}", expected, "the PLC's user rights: the controller "
                         "writes its heartbeat, acknowledgements, chute commands and assignments there")
        if loose:
            return Check("controller_access", WARN, f"this user may write PLC variables {', '.join(loose[:4])}"
                         f"{' and more' if len(loose) > 4 else ''}", expected, "the write protection of "
                         f"{lay.OBJECT}/{lay.PLC_FOLDER}: a write there should get BadUserAccessDenied")
        return Check("controller_access", PASS, f"{len(lay.EDGE_VARS)} controller variables writable, none of the "
                     f"{len(lay.PLC_VARS)} PLC variables", expected)

    async def _watch(self) -> None:
        """The heartbeat values the controller's subscription delivers: a session whose subscription stays
        silent is dropped by the controller."""
        from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent
        heartbeat = self.link._plc["Heartbeat"]
        while True:
            try:
                ev = await self.link._sub.__anext__()
            except StopAsyncIteration:
                self._sub_problem = "the PLC ended the subscription"
                return
            if isinstance(ev, DataChangeEvent) and ev.node.nodeid == heartbeat and isinstance(ev.value, int):
                self._notified.add(ev.value)
            elif isinstance(ev, StatusChangeEvent) and not ev.notification.Status.is_good():
                self._sub_problem = f"the PLC reported the subscription {ev.notification.Status.name}"

    async def poll(self) -> Snapshot:
        """One Read of the values the controller follows (its subscription's, and FLAGS)."""
        if not self._polled:
            raise LinkTrouble("the PLC variables were not found (see interface)")
        dvs = await self._read(self._polled)
        t_s = asyncio.get_running_loop().time()
        v = {}
        for name, dv in zip(POLLED, dvs):
            if (dv.StatusCode is not None and not dv.StatusCode.is_good()) or dv.Value is None:
                raise LinkTrouble(f"{lay.PLC_FOLDER}/{name} reads {dv.StatusCode.name if dv.StatusCode else 'nothing'}")
            v[name] = dv.Value.Value
        for name in ("ScanEvents", "ConfirmEvents"):
            problem = lay.check_array(lay.PLC_BY_NAME[name], v[name])
            if problem:
                raise LinkTrouble(f"{lay.PLC_FOLDER}/{name}: {problem}")
        scan, confirm = v["ScanEvents"], v["ConfirmEvents"]
        return Snapshot(t_s, v["Version"], v["Heartbeat"], v["LineState"], v["BootId"], v["EdgeHeartbeatSeen"],
                        v["Flags"], scan_seq=scan[1], scan_slots=tuple(scan[2::lay.SCAN_FIELDS]),
                        confirm_seq=confirm[1], confirm_slots=tuple(confirm[2::lay.CONFIRM_FIELDS]),
                        ring_boots=(scan[0], confirm[0]))

    async def version_hint(self) -> str | None:
        return None

    poll_note = ""

    def extra_checks(self, snaps) -> list[Check]:
        polled = {s.heartbeat for s in snaps}
        got = len(polled & self._notified)
        expected = (f"a notification for every heartbeat change (publishing interval 0): the controller drops a "
                    f"session whose subscription is silent for {self.link.silence_s * 1000:.0f} ms")
        remedy = "the PLC's subscription limits (publishing and sampling interval, queue sizes)"
        if self._sub_problem or not self._notified:
            return [Check("subscription", FAIL, self._sub_problem or "no heartbeat notification during the check",
                          expected, remedy)]
        found = f"{got} of the {len(polled)} heartbeat values the reads saw were notified"
        return [Check("subscription", PASS if got >= 0.8 * len(polled) else WARN, found, expected,
                      "" if got >= 0.8 * len(polled) else remedy)]

    async def controller_values(self) -> tuple[int, int, int]:
        dvs = await self._read([self.link._edge[n] for n in ("Heartbeat", "ScanAck", "ConfirmAck")])
        heartbeat, scan_ack, confirm_ack = (int(dv.Value.Value or 0) if dv.Value is not None else 0 for dv in dvs)
        return heartbeat, scan_ack, confirm_ack

    async def write_heartbeat(self, heartbeat: int, scan_ack: int, confirm_ack: int) -> None:
        """The controller's heartbeat request: Heartbeat, ScanAck and ConfirmAck in one Write."""
        from .link import LinkError
        self._beats += 1
        self.written[:] = [f"{self._beats} heartbeat writes to {lay.OBJECT}/{lay.EDGE_FOLDER}/Heartbeat (ScanAck and "
                           f"ConfirmAck with it, as read)"]
        try:
            await self.link._send_heartbeat(heartbeat, scan_ack, confirm_ack)
        except LinkError as exc:
            raise LinkTrouble(str(exc)) from exc

    async def close(self) -> None:
        await cancel_and_wait([self._watcher], 1.0)
        await self.link._close()
