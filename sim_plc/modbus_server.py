"""Serve the PLC model over Modbus TCP with pymodbus' own server.

The PLC-owned block is read-only on the wire (a write there gets ILLEGAL ADDRESS, as from a
careful PLC); the model writes it directly in the shared register list.
"""
import asyncio

from drivers import regmap as rm
from drivers.regmap import RegisterMap

def build_device(regmap: RegisterMap, on_edge_write):
    """A pymodbus SimDevice answering every unit id, and its register list."""
    from pymodbus.simulator import DataType, SimData, SimDevice

    async def action(func_code, start, address, count, registers, values):
        if values is not None:
            on_edge_write(address, list(values))
        return None

    blocks = sorted([
        (regmap.plc_base, rm.PLC_BLOCK_WORDS, True),
        (regmap.edge_base, rm.EDGE_BLOCK_WORDS, False),
    ])
    # Unused addresses read as 0 and refuse writes, so that the register list starts at 0 and
    # the model can index it by protocol address.
    simdata, cursor = [], 0
    for address, count, readonly in blocks:
        if address > cursor:
            simdata.append(SimData(cursor, count=address - cursor, values=0, datatype=DataType.REGISTERS,
                                   readonly=True))
        simdata.append(SimData(address, count=count, values=0, datatype=DataType.REGISTERS, readonly=readonly))
        cursor = address + count
    return SimDevice(id=0, simdata=simdata, action=action)


class ModbusPlcServer:
    def __init__(self, host: str, port: int, regmap: RegisterMap = RegisterMap()):
        self.host, self.port, self.map = host, port, regmap
        self._server = None
        self._task = None
        self._on_write = lambda address, values: None

    def bind_model(self, on_edge_write) -> None:
        self._on_write = on_edge_write

    @property
    def registers(self) -> list[int]:
        """The live register list the server answers from (first block's start is address 0)."""
        runtime = self._server.context.devices[0]
        start, _, regs, _ = runtime.block["x"]
        if start != 0:
            raise RuntimeError("register map must start at address 0")
        return regs

    async def start(self, timeout_s: float = 5.0) -> None:
        from pymodbus.server import ModbusTcpServer
        device = build_device(self.map, lambda a, v: self._on_write(a, v))
        self._server = ModbusTcpServer(device, address=(self.host, self.port))
        self._task = asyncio.create_task(self._server.serve_forever(), name="modbus-server")
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await _port_open(self.host, self.port):
            if self._task.done():
                self._task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"Modbus server did not listen on {self.host}:{self.port} within {timeout_s} s")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None:
            await asyncio.wait_for(self._server.shutdown(), 5.0)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True
