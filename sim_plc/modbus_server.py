"""Serve the PLC model over Modbus TCP with pymodbus' own server, and misbehave on command.

Every address from 0 to the end of the higher block answers reads. Writes go to the model,
which refuses any outside the controller block; a refused write gets exception 02 ILLEGAL DATA
ADDRESS, as from a careful PLC, and changes nothing. The register list the server answers from
is the model's own, so a PLC restart (stop, then start) keeps serving the same image.

Faults for tests: `drop_connections()` resets every open connection, `slow_answers(delay_s)`
holds every answer (math.inf: accept requests and never answer) until `slow_answers(None)`.
"""
import asyncio
import logging
import math

from drivers.regmap import RegisterMap

log = logging.getLogger("sortline.sim")


class ModbusPlcServer:
    def __init__(self, host: str, port: int, regmap: RegisterMap = RegisterMap()):
        self.host, self.port, self.map = host, port, regmap
        self._server = None
        self._regs: list[int] | None = None
        self._on_write = lambda address, values: None
        self._delay_s: float | None = None
        self.requests = 0
        self.refused_writes = 0
        self.dropped = 0

    def bind_model(self, model) -> None:
        """Answer from `model.regs` and hand it every write (a bare callable is taken as the write hook)."""
        if callable(model):
            self._on_write = model
            return
        self._on_write = model.on_edge_write
        self._regs = model.regs
        if self._server is not None:
            self._install(self._regs)

    @property
    def registers(self) -> list[int]:
        """The live register list the server answers from (index = protocol address)."""
        if self._regs is None:
            raise RuntimeError("start the server or bind a model first")
        return self._regs

    @property
    def listening(self) -> bool:
        return self._server is not None

    def _device(self, words: int):
        from pymodbus.simulator import DataType, SimData, SimDevice

        async def action(func_code, start, address, count, registers, values):
            self.requests += 1
            if self._delay_s:
                await self._hold()
            if values is None:
                return None
            if self._on_write(address, list(values)):
                from pymodbus.constants import ExcCodes
                self.refused_writes += 1
                return ExcCodes.ILLEGAL_ADDRESS
            return None

        # One writable block from address 0: the model decides what a write may change, so that it
        # can count refusals (pymodbus' own read-only check would refuse them silently).
        return SimDevice(id=0, simdata=[SimData(0, count=words, values=0, datatype=DataType.REGISTERS)],
                         action=action)

    def _install(self, regs: list[int]) -> None:
        runtime = self._server.context.devices[0]
        start, _, _, flags = runtime.block["x"]
        if start != 0 or len(flags) < len(regs):
            raise RuntimeError(f"a register image of {len(regs)} words cannot back a server of {len(flags)}")
        runtime.block["x"] = (start, len(regs), regs, flags)

    async def start(self, timeout_s: float = 5.0) -> None:
        from pymodbus.server import ModbusTcpServer
        from .model import image_words
        words = len(self._regs) if self._regs is not None else image_words(self.map)
        self._server = ModbusTcpServer(self._device(words), address=(self.host, self.port))
        if self._regs is None:
            self._regs = self._server.context.devices[0].block["x"][2]
        else:
            self._install(self._regs)
        try:
            await asyncio.wait_for(self._server.serve_forever(background=True), timeout_s)
        except (RuntimeError, OSError, asyncio.TimeoutError) as exc:
            self._server = None
            raise OSError(f"the simulated PLC cannot listen on {self.host}:{self.port} ({exc!r}): is another "
                          f"simulator or PLC using the port? Pick another one with --port") from None

    async def stop(self) -> None:
        self._delay_s = None                 # answers held back are let go, so their tasks end
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.wait_for(server.shutdown(), 5.0)

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
