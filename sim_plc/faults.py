"""Faults scripted at parcel counts: `sortline sim --fault 500:restart:1.5 --fault 800:full:5:10`.

Each fault is `AT:KIND[:ARG...]`: once AT parcels have passed the scan point, KIND happens.
Durations are host seconds; a fault with a duration ends on its own.
"""
import asyncio
import logging
import math
from dataclasses import dataclass

from drivers.regmap import LineState

log = logging.getLogger("sortline.sim")

# kind -> (argument names, defaults for the trailing ones, what it does)
KINDS = {
    "estop": (("seconds",), (2.0,), "emergency stop for SECONDS, then the operator restarts the line"),
    "stop": (("seconds",), (2.0,), "the operator stops the line for SECONDS"),
    "jam": (("seconds", "position_m"), (3.0, None), "a jam at POSITION_M (default: the first diverters) for "
                                                    "SECONDS; parcels in it are taken off the belt"),
    "restart": (("seconds",), (1.0,), "PLC restart: off for SECONDS, then a new BOOT_ID"),
    "drop": ((), (), "every Modbus connection is reset"),
    "slow": (("ms", "seconds"), (5.0,), "answers held MS milliseconds (or 'never') for SECONDS"),
    "full": (("chute", "seconds"), (10.0,), "the full sensor of CHUTE is on for SECONDS"),
    "fault": (("chute", "seconds"), (10.0,), "the diverter of CHUTE is faulted for SECONDS"),
    "camera": (("seconds",), (10.0,), "the camera uploads no image for SECONDS"),
}


class FaultError(ValueError):
    pass


@dataclass(frozen=True)
class Fault:
    at_parcel: int
    kind: str
    args: dict

    def describe(self) -> str:
        return f"{self.at_parcel}:{self.kind}" + "".join(f":{v}" for v in self.args.values() if v is not None)


def usage() -> str:
    return "; ".join(f"{k}{''.join(':' + a.upper() for a in names)} ({text})" for k, (names, _, text) in KINDS.items())


def parse_fault(text: str) -> Fault:
    parts = text.strip().split(":")
    if len(parts) < 2 or parts[1] not in KINDS:
        raise FaultError(f"--fault {text!r}: write AT:KIND[:ARG...], KIND one of: {usage()}")
    try:
        at = int(parts[0])
    except ValueError:
        raise FaultError(f"--fault {text!r}: AT must be a parcel count, got {parts[0]!r}") from None
    if at < 0:
        raise FaultError(f"--fault {text!r}: AT must be 0 or more")
    kind, given = parts[1], parts[2:]
    names, defaults, _ = KINDS[kind]
    required = len(names) - len(defaults)
    if not required <= len(given) <= len(names):
        raise FaultError(f"--fault {text!r}: {kind} takes {':'.join(n.upper() for n in names) or 'no arguments'}")
    values = list(given) + [str(d) if d is not None else None for d in defaults[len(given) - required:]]
    args = {}
    for name, value in zip(names, values):
        args[name] = None if value is None else _value(text, name, value)
    return Fault(at, kind, args)


def _value(text: str, name: str, value: str):
    if name == "ms" and value == "never":
        return math.inf
    try:
        number = int(value) if name == "chute" else float(value)
    except ValueError:
        raise FaultError(f"--fault {text!r}: {name.upper()} = {value!r} is not a number") from None
    if name == "position_m" and number < 0 or name != "position_m" and not number > 0:
        raise FaultError(f"--fault {text!r}: {name.upper()} must be more than 0")
    return number


class FaultRunner:
    """Applies scripted faults to a SimPlc as parcels pass, and remembers what it did."""

    def __init__(self, plc, faults=(), camera=None):
        self.plc = plc
        self.camera = camera             # has `silent_until_s` (loop time); None: no camera in this shift
        self.pending = sorted(faults, key=lambda f: f.at_parcel)
        self.applied: list[dict] = []
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()

    def after_parcel(self, count: int) -> None:
        while self.pending and self.pending[0].at_parcel <= count:
            self.apply(self.pending.pop(0))

    def apply(self, fault: Fault) -> None:
        plc, a, model = self.plc, fault.args, self.plc.model
        # at_s from the shift's start for people; scan_s on the clock of the records' scan_s, so that
        # a reader of the report can tell which parcels were scanned around the fault.
        now = self._loop.time()
        self.applied.append({"fault": fault.describe(), "at_s": round(now - self._t0, 3), "scan_s": round(now, 3)})
        log.warning("fault on command: %s", fault.describe())
        if fault.kind == "estop":
            model.estop()
            self._later(a["seconds"], self._restart_line)
        elif fault.kind == "stop":
            model.stop_line()
            self._later(a["seconds"], self._restart_line)
        elif fault.kind == "jam":
            model.jam(a["position_m"])
            self._later(a["seconds"], self._restart_line)
        elif fault.kind == "restart":
            self._spawn(plc.restart(a["seconds"]))
        elif fault.kind == "drop":
            plc.drop_connections()
        elif fault.kind == "slow":
            plc.slow_answers(a["ms"] / 1000)
            self._later(a["seconds"], plc.slow_answers, None)
        elif fault.kind == "full":
            model.set_chute_full(a["chute"], True)
            self._later(a["seconds"], model.set_chute_full, a["chute"], None)
        elif fault.kind == "fault":
            model.set_chute_fault(a["chute"], True)
            self._later(a["seconds"], model.set_chute_fault, a["chute"], False)
        elif fault.kind == "camera" and self.camera is not None:
            self.camera.silent_until_s = self._loop.time() + a["seconds"]

    def _restart_line(self) -> None:
        # A PLC restart in the meantime has already brought the line back up.
        if self.plc.model.powered and self.plc.model.line_state != LineState.RUNNING:
            self.plc.model.clear()

    def _later(self, delay_s: float, fn, *args) -> None:
        async def run():
            await asyncio.sleep(delay_s)
            fn(*args)
        self._spawn(run())

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def settle(self, timeout_s: float) -> None:
        """Wait for every fault in progress to end (a restart to boot, a stop to clear)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
