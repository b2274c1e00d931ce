"""The abstract PLC link the controller talks to.

A link delivers events (scan events, divert confirmations) into a queue exactly once, in order,
and carries assignments and chute commands to the PLC. It heals itself: the controller never
reconnects, it only reads `status`.
"""
import abc
import asyncio
import importlib
from dataclasses import dataclass, field

from .regmap import RegisterMap

BACKENDS = {"modbus": "drivers.modbus:ModbusLink"}


@dataclass(frozen=True)
class ScanEvent:
    seq: int
    tracking: int
    encoder_counts: int
    received_s: float            # host monotonic time the link saw the event


@dataclass(frozen=True)
class Confirmation:
    seq: int
    tracking: int
    chute: int
    result: int                  # drivers.regmap.DivertResult value (untrusted: may be unknown)
    received_s: float


@dataclass(frozen=True)
class LinkSettings:
    host: str = "127.0.0.1"
    port: int = 502
    unit: int = 1
    poll_interval_s: float = 0.002
    timeout_s: float = 0.2
    heartbeat_interval_s: float = 0.1
    reconnect_max_s: float = 1.0
    regmap: RegisterMap = field(default_factory=RegisterMap)


@dataclass
class LinkStatus:
    connected: bool = False
    lost_since_wall: float | None = None     # wall-clock time (for people), None while connected
    last_error: str = ""
    plc_boot_id: int | None = None
    anomalies: dict = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        self.anomalies[what] = self.anomalies.get(what, 0) + n


class PlcLink(abc.ABC):
    def __init__(self, settings: LinkSettings):
        self.settings = settings
        self.events: asyncio.Queue = asyncio.Queue()
        self.status = LinkStatus()

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin connecting, polling and heart-beating in the background; returns at once."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop all background work and close the connection."""

    @abc.abstractmethod
    async def assign(self, tracking: int, chute: int, reason: int) -> None:
        """Send one assignment; raises ConnectionError if the PLC could not be reached in time."""

    @abc.abstractmethod
    async def set_disabled_chutes(self, chutes: set[int]) -> None:
        """Tell the PLC which chutes the technician has disabled."""

    async def wait_connected(self, timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.status.connected:
            if asyncio.get_running_loop().time() > deadline:
                raise ConnectionError(f"PLC at {self.address} not reachable within {timeout_s:.1f} s: "
                                      f"{self.status.last_error or 'no answer'}; check the address and cable")
            await asyncio.sleep(0.02)


def open_link(protocol: str, settings: LinkSettings) -> PlcLink:
    try:
        target = BACKENDS[protocol]
    except KeyError:
        raise ValueError(f"unknown PLC protocol {protocol!r}; use one of: {', '.join(sorted(BACKENDS))}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(settings)
