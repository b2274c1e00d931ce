"""Serve the PLC model over Modbus TCP with pymodbus' own server, as strictly as a PLC answers, and
misbehave on command.

What a request gets (docs/plc-interface.md, "Conventions"), checked in this order:
- a unit id other than the configured one (`unit`, `[plc] unit`): exception 0B GATEWAY TARGET
  DEVICE FAILED TO RESPOND;
- a function code other than 3 (read holding registers) and 16 (write multiple registers):
  exception 01 ILLEGAL FUNCTION;
- a read or write that does not decode (more than 125 registers read or 123 written, a byte count
  that does not match): exception 03 ILLEGAL DATA VALUE;
- a read or write past the end of the higher block: exception 02 ILLEGAL DATA ADDRESS;
- a write outside the controller block: the model refuses it and counts it, exception 02.
A refused request changes nothing. The register list the server answers from is the model's own,
so a PLC restart (stop, then start) keeps serving the same image.

A PLC serves its communication in its program cycle: `serve_in_cycles(cycle_s, one_per_cycle)`
holds every answer to the next cycle boundary, and with `one_per_cycle` answers one request per
cycle. Faults for tests: `drop_connections()` resets every open connection, `slow_answers(delay_s)`
holds every answer (math.inf: accept requests and never answer) until `slow_answers(None)`.
"""
import asyncio
import collections
import logging
import math

from drivers.regmap import RegisterMap
from drivers.timed_awaits import bounded

log = logging.getLogger("sortline.sim")

SERVED_FUNCTIONS = frozenset({3, 16})        # read holding registers, write multiple registers


class ModbusPlcServer:
    def __init__(self, host: str, port: int, regmap: RegisterMap = RegisterMap(), unit: int = 1):
        self.host, self.port, self.map = host, port, regmap
        self.unit = _unit(unit)
        self._server = None
        self._regs: list[int] | None = None
        self._on_write = lambda address, values: None
        self._delay_s: float | None = None
        self.cycle_s: float | None = None
        self.one_per_cycle = False
        self._next_free_cycle = 0
        self.requests = 0                    # every request decoded, answered or not yet
        self.refused_writes = 0
        self.illegal_functions = 0
        self.other_units = 0
        self.dropped = 0
        self.answered = 0
        self.by_function = collections.Counter()   # requests of function code 3 and 16 served
        self._answer_span_s: tuple[float, float] | None = None      # first and newest answer, loop time
        self._waits = collections.Counter()    # wait from request to answer, in 0.1 ms steps: bounded memory

    def bind_model(self, model) -> None:
        """Answer from `model.regs` and hand it every write (a bare callable is taken as the write hook)."""
        if callable(model):
            self._on_write = model
            return
        self._on_write = model.on_edge_write
        self._regs = model.regs
        if self._server is not None:
            self._install(self._regs)

    def set_unit(self, unit: int) -> None:
        """The unit id this PLC answers to (`[plc] unit`); every other one gets exception 0B."""
        self.unit = _unit(unit)

    def serve_in_cycles(self, cycle_s: float | None, one_per_cycle: bool = False) -> None:
        """Answer at the boundaries of a `cycle_s` PLC cycle (None: at once), one request per cycle
        with `one_per_cycle`.

        A PLC program handles its Modbus server block once per cycle (an S7's MB_SERVER call in OB1,
        say), and that block takes one request per call: a request waits for the next boundary, and
        requests that arrive together are answered in arrival order one cycle apart. Each request
        takes its cycle when it arrives, so the order holds even if the host wakes a little late.
        """
        if cycle_s is not None and not (cycle_s > 0 and math.isfinite(cycle_s)):
            raise ValueError(f"the PLC cycle must be a positive time in seconds (or None), got {cycle_s}")
        if one_per_cycle and cycle_s is None:
            raise ValueError("one request per cycle needs a PLC cycle time: give the cycle too")
        self.cycle_s, self.one_per_cycle = cycle_s, one_per_cycle
        self._next_free_cycle = 0
        if cycle_s is not None:
            log.info("Modbus answers at the %.1f ms PLC cycle boundaries%s", cycle_s * 1000,
                        ", one request per cycle" if one_per_cycle else "")

    @property
    def registers(self) -> list[int]:
        """The live register list the server answers from (index = protocol address)."""
        if self._regs is None:
            raise RuntimeError("start the server or bind a model first")
        return self._regs

    @property
    def listening(self) -> bool:
        return self._server is not None

    def stats(self) -> dict:
        """What the server answered: counts, the rate of answers, and how long requests waited for them."""
        span_s = self._answer_span_s[1] - self._answer_span_s[0] if self._answer_span_s else 0.0
        steps = sorted(self._waits.items())

        def ms(q):
            rank, seen = min(self.answered - 1, int(self.answered * q)), 0
            for step, n in steps:
                seen += n
                if seen > rank:
                    return step / 10
            return None
        return {"unit": self.unit, "cycle_ms": self.cycle_s * 1000 if self.cycle_s else None,
                "one_request_per_cycle": self.one_per_cycle, "requests": self.requests,
                "answered": self.answered,
                "answered_per_s": round((self.answered - 1) / span_s, 1) if span_s else None,
                "wait_ms": {"p50": ms(0.5), "p99": ms(0.99), "max": ms(1.0)},
                "reads": self.by_function[3], "writes": self.by_function[16],
                "illegal_function": self.illegal_functions, "other_unit": self.other_units,
                "refused_writes": self.refused_writes}

    # -- one request --------------------------------------------------------------------------------
    async def _answer(self, pdu):
        """The response to one decoded request, or None for no answer at all."""
        from pymodbus.constants import ExcCodes
        from pymodbus.pdu import ExceptionResponse
        server = self._server
        if server is None:                   # stopped between the request's arrival and now
            return None
        arrived_s = asyncio.get_running_loop().time()
        context = server.context
        self.requests += 1
        if self._delay_s:
            await self._hold()
        if self.cycle_s:
            await self._cycle_turn()
        # A fixed unit id is what a PLC's own Modbus TCP server has; one that is addressed through a
        # unit id it does not have answers as a gateway with nothing behind that id: 0B. No answer
        # at all would cost the controller its whole timeout and look like a broken cable; 0B is
        # immediate, and the controller names [plc] unit for it. (pymodbus 3.16 left to itself: its
        # legacy datastore answers 0B, or nothing with ignore_missing_devices; its SimDevice
        # datastore fails the lookup and answers 04 DEVICE FAILURE, whatever that option says.)
        if pdu.dev_id != self.unit:
            self.other_units += 1
            log.warning("refused a Modbus request for unit id %d: this PLC is unit %d (exception 0B)",
                        pdu.dev_id, self.unit)
            return self._answered(arrived_s, ExceptionResponse(pdu.function_code, ExcCodes.GATEWAY_NO_RESPONSE))
        refusal = getattr(pdu, "refusal", None)
        if refusal == ExcCodes.ILLEGAL_FUNCTION:
            self.illegal_functions += 1
            log.warning("refused Modbus function code %d: only 3 and 16 are served (exception 01)", pdu.function_code)
        elif refusal is not None:
            log.warning("refused a Modbus request with function code %d that does not decode: count or byte "
                        "count out of range (exception %02X)", pdu.function_code, refusal)
        if refusal is not None:
            return self._answered(arrived_s, ExceptionResponse(pdu.function_code, refusal))
        self.by_function[pdu.function_code] += 1
        try:
            response = await pdu.datastore_update(context, pdu.dev_id)
        except Exception:                   # a defect here must not end the connection's task unanswered
            log.exception("the simulated PLC could not serve a Modbus request (function code %d)", pdu.function_code)
            response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
        return self._answered(arrived_s, response)

    def _answered(self, arrived_s: float, response):
        now_s = asyncio.get_running_loop().time()
        self.answered += 1
        self._answer_span_s = (self._answer_span_s[0] if self._answer_span_s else now_s, now_s)
        self._waits[round((now_s - arrived_s) * 10_000)] += 1
        return response

    async def _cycle_turn(self) -> None:
        loop = asyncio.get_running_loop()
        now_s = loop.time()
        cycle_s = self.cycle_s
        turn = math.floor(now_s / cycle_s) + 1
        if self.one_per_cycle:
            turn = max(turn, self._next_free_cycle)
            self._next_free_cycle = turn + 1
        await asyncio.sleep(turn * cycle_s - now_s)

    def _device(self, words: int):
        from pymodbus.simulator import DataType, SimData, SimDevice

        async def action(func_code, start, address, count, registers, values):
            if values is None:
                return None
            if self._on_write(address, list(values)):
                from pymodbus.constants import ExcCodes
                self.refused_writes += 1
                return ExcCodes.ILLEGAL_ADDRESS
            return None

        # One writable block from address 0: the model decides what a write may change, so that it
        # can count refusals (pymodbus' own read-only check would refuse them silently). Id 0 takes
        # every unit id: `_answer` has refused the others before the datastore is asked.
        return SimDevice(id=0, simdata=[SimData(0, count=words, values=0, datatype=DataType.REGISTERS)],
                         action=action)

    def _install(self, regs: list[int]) -> None:
        runtime = self._server.context.devices[0]
        start, _, _, flags = runtime.block["x"]
        if start != 0 or len(flags) < len(regs):
            raise RuntimeError(f"a register image of {len(regs)} words cannot back a server of {len(flags)}")
        runtime.block["x"] = (start, len(regs), regs, flags)

    async def start(self, timeout_s: float = 5.0) -> None:
        from .model import image_words
        words = len(self._regs) if self._regs is not None else image_words(self.map)
        self._server = _server_class()(self._device(words), (self.host, self.port), self._answer)
        if self._regs is None:
            self._regs = self._server.context.devices[0].block["x"][2]
        else:
            self._install(self._regs)
        try:
            await bounded(self._server.serve_forever(background=True), timeout_s)
        except (RuntimeError, OSError, asyncio.TimeoutError) as exc:
            self._server = None
            raise OSError(f"the simulated PLC cannot listen on {self.host}:{self.port} ({exc!r}): is another "
                          f"simulator or PLC using the port? Pick another one with --port") from None

    async def stop(self) -> None:
        self._delay_s = None                 # answers held back are let go, so their tasks end
        if self._server is not None:
            server, self._server = self._server, None
            # bounded, not wait_for: a cancellation lost inside pymodbus must not hang the stop
            await bounded(server.shutdown(), 5.0)

    # -- faults on command ----------------------------------------------------------------------
    def drop_connections(self) -> int:
        """Reset every open client connection, as a broken cable or a switch reboot would."""
        if self._server is None:
            return 0
        connections = list(self._server.active_connections.values())
        for conn in connections:
            if conn.transport is not None:
                conn.transport.abort()
        self.dropped += len(connections)
        log.warning("dropped %d Modbus connection(s) on command", len(connections))
        return len(connections)

    def slow_answers(self, delay_s: float | None) -> None:
        """Hold every answer for `delay_s` (math.inf: never answer); None answers at once again."""
        if delay_s is not None and not delay_s > 0:
            raise ValueError(f"answer delay must be positive (or None to answer at once), got {delay_s}")
        self._delay_s = delay_s
        if delay_s is None:
            log.warning("Modbus answers at full speed again")
        else:
            log.warning("Modbus answers held %s on command", "forever" if math.isinf(delay_s) else f"{delay_s * 1000:.0f} ms")

    async def _hold(self) -> None:
        loop = asyncio.get_running_loop()
        since = loop.time()
        while self._delay_s and loop.time() - since < self._delay_s:
            await asyncio.sleep(min(0.01, max(0.0, since + self._delay_s - loop.time())))


def _unit(unit: int) -> int:
    if not isinstance(unit, int) or not 0 <= unit <= 255:
        raise ValueError(f"a Modbus unit id is 0-255 ([plc] unit allows 0-247), got {unit!r}")
    return unit


def _server_class():
    """pymodbus' TCP server, with every decoded request answered by `answer(pdu)`.

    pymodbus would answer the function codes it knows (diagnostics, device identification, coils,
    input registers...) and map unknown unit ids to its default device; a PLC with a fixed
    interface answers only what docs/plc-interface.md names, so every request passes `answer`.
    """
    from pymodbus.constants import ExcCodes
    from pymodbus.pdu import DecodePDU, ModbusPDU
    from pymodbus.server import ModbusTcpServer
    from pymodbus.server.requesthandler import ServerRequestHandler

    class Refused(ModbusPDU):
        """A request refused before its data is used: `refusal` is the exception it gets."""

        def __init__(self, function_code: int, refusal: ExcCodes):
            super().__init__()
            self.function_code, self.refusal = function_code, refusal

    class Decoder(DecodePDU):
        # pymodbus answers a request it cannot decode with function code 0x80, not the request's own
        # + 0x80: a client cannot tell what was refused. Unserved codes get 01 here, and a read or
        # write of 3/16 pymodbus cannot take (a count over 125 or 123, say) 03 ILLEGAL DATA VALUE.
        def decode(self, frame: bytes):
            if frame and frame[0] not in SERVED_FUNCTIONS:
                return Refused(frame[0], ExcCodes.ILLEGAL_FUNCTION)
            pdu = super().decode(frame)
            return pdu if pdu is not None or not frame else Refused(frame[0], ExcCodes.ILLEGAL_VALUE)

    class Handler(ServerRequestHandler):
        async def handle_request(self):
            # The request is taken before any await: a held answer must still answer this request.
            pdu, addr = self.last_pdu, self.last_addr
            if not pdu:
                return
            response = await self.server.answer(pdu)
            if response is None:
                return
            response.transaction_id, response.dev_id = pdu.transaction_id, pdu.dev_id
            self.server_send(response, addr)

    class Server(ModbusTcpServer):
        def __init__(self, device, address, answer):
            super().__init__(device, address=address)
            self.decoder = Decoder(True)
            self.answer = answer

        def callback_new_connection(self):
            return Handler(self, self.trace_packet, self.trace_pdu, self.trace_connect)
    return Server
