"""One simulated PLC: the model, the protocol servers that serve it, and the faults that span both.

    async with SimPlc(config.geometry, port=15020) as plc:
        plc.model.scan()                  # a parcel passes the photo-eye
        plc.model.estop(); plc.model.clear()
        plc.model.set_chute_full(5, True)
        plc.drop_connections(); plc.slow_answers(0.3); plc.slow_answers(None)
        await plc.restart(down_s=1.0)     # new BOOT_ID, sequence numbers from 1, tracking lost

A protocol server is any object with `async start()`, `async stop()`, `drop_connections() -> int`
and `slow_answers(delay_s)`, built on `plc.model` and added with `add_server` before `start`.
"""
import asyncio
import logging

from drivers.regmap import RegisterMap

from .chutes import ChuteSettings
from edge.line_geometry import LineGeometry
from .model import PlcModel
from .modbus_server import ModbusPlcServer

log = logging.getLogger("sortline.sim")


class SimPlc:
    def __init__(self, geometry: LineGeometry, *, host: str = "127.0.0.1", port: int = 15020,
                 regmap: RegisterMap = RegisterMap(), heartbeat_timeout_s: float = 0.5,
                 chutes: ChuteSettings = ChuteSettings(), boot_id: int = 1, modbus: bool = True, unit: int = 1):
        self.model = PlcModel(geometry, None, regmap, heartbeat_timeout_s=heartbeat_timeout_s, boot_id=boot_id,
                              chutes=chutes)
        self.servers: list = []
        self.modbus = None
        if modbus:
            self.modbus = ModbusPlcServer(host, port, regmap, unit=unit)
            self.modbus.bind_model(self.model)
            self.servers.append(self.modbus)
        self._stopped = False

    def add_server(self, server) -> None:
        self.servers.append(server)

    async def start(self) -> None:
        for server in self.servers:
            await server.start()
        self.model.start()

    async def stop(self) -> None:
        self._stopped = True
        await self.model.stop()
        for server in self.servers:
            await server.stop()

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.stop()

    async def restart(self, down_s: float = 1.0) -> None:
        """Power-cycle the PLC: connections refused for `down_s`, then a new boot with a new BOOT_ID."""
        if not self.model.powered:
            raise RuntimeError("the PLC is already restarting")
        log.warning("PLC restart: off for %.1f s", down_s)
        for server in self.servers:
            await server.stop()
        self.model.power_off()
        await asyncio.sleep(down_s)
        if self._stopped:                    # the simulator was shut down while the PLC was off
            return
        self.model.power_on()
        for server in self.servers:
            await server.start()

    def drop_connections(self) -> int:
        return sum(server.drop_connections() for server in self.servers)

    def slow_answers(self, delay_s: float | None) -> None:
        for server in self.servers:
            server.slow_answers(delay_s)
