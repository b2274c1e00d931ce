"""A simulated shift: parcels arrive at the scan photo-eye, the PLC sorts them, the truth is kept.

Every parcel's expected chute comes from the sort plan applied to what is really printed on its
label, so a run can say how many parcels went where they should, and why the others did not
(sim_plc.accounting). Label images are rendered ahead (sim_plc.camera) so that the timed part
of the run costs the controller nothing.
"""
import asyncio
import collections
import gc
import itertools
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from . import arrivals as arrivals_mod
from .accounting import account
from .camera import FolderCamera, LabelImages, default_cache_dir
from .chutes import ChuteSettings
from .faults import FaultRunner
from .labels import Expectation, ParcelLabel, label_stream
from .plc import SimPlc

log = logging.getLogger("sortline.sim")

CAMERA_MODES = ("ahead", "all", "off")
ARRIVALS = ("fixed", "poisson", "trace")


@dataclass(frozen=True)
class ShiftSpec:
    parcels: int | None = 240          # None: until stopped (Ctrl-C); 0: serve only, no parcels
    rate_per_h: float = 12000.0
    arrivals: str = "fixed"            # "fixed" pitch, "poisson", or "trace" (replay `trace`)
    trace: str | None = None           # CSV of scan times (and sizes/weights), see sim_plc.arrivals
    seed: int = 1
    no_label_share: float = 0.03       # parcels lying label-down
    unknown_route_share: float = 0.04  # routing codes the plan does not know
    preadvice_share: float = 1.0       # of the labelled parcels with a known routing code, those pre-advised
    tier: str = "clean"
    parcel_length_m: float = arrivals_mod.DEFAULT_LENGTH_M
    min_gap_m: float = arrivals_mod.DEFAULT_GAP_M
    queue_at_induction: bool = False   # a trace denser than the belt: hold parcels back, do not refuse
    camera: str = "all"                # "all": render before the first parcel; "ahead": while parcels run
    label_cache: str | None = "default"  # folder of rendered images; None: a temporary one
    label_layouts: int = 16            # layouts per courier and tier (sim_plc.label_render); 0: full renders
    render_workers: int = 2
    render_ahead: int = 24             # images ready before the first parcel, and kept ahead of the belt
    chutes: ChuteSettings = field(default_factory=ChuteSettings)
    faults: tuple = ()
    wait_for_controller_s: float | None = 60.0   # None: start parcels without waiting for a controller
    # None: a new one at every start, as a real PLC's retentive BOOT_ID + 1 would be; this PLC's
    # tracking numbers start at 1 each time, so a controller tells two runs apart by it.
    boot_id: int | None = None


@dataclass(frozen=True)
class ShiftParcel:
    """What the shift knows about a parcel and the PLC does not: the truth the report compares with."""
    index: int
    label: ParcelLabel
    arrival: arrivals_mod.Arrival
    expected: tuple
    path: str | None = None            # the plan's reason for `expected`: PREADVICE, ROUTING_CODE, ...


def arrival_stream(spec: ShiftSpec, speed_m_s: float):
    if spec.arrivals == "fixed":
        return arrivals_mod.fixed_pitch(spec.rate_per_h, speed_m_s, spec.parcel_length_m, spec.min_gap_m)
    if spec.arrivals == "poisson":
        return arrivals_mod.poisson(spec.rate_per_h, speed_m_s, spec.seed + 1, spec.parcel_length_m, spec.min_gap_m)
    if spec.arrivals == "trace":
        if not spec.trace:
            raise arrivals_mod.ArrivalError("arrivals 'trace' needs a trace file (--trace FILE)")
        return iter(_trace(spec, speed_m_s))
    raise arrivals_mod.ArrivalError(f"unknown arrivals {spec.arrivals!r}: use one of {', '.join(ARRIVALS)}")


def _trace(spec: ShiftSpec, speed_m_s: float) -> list:
    gap_m = spec.min_gap_m if spec.queue_at_induction else None
    return arrivals_mod.read_trace(spec.trace, speed_m_s, spec.parcel_length_m, queue_gap_m=gap_m)


def shift_parcels(spec: ShiftSpec, plan, speed_m_s: float):
    """The shift's parcels in arrival order, each with its label and the chutes it belongs in."""
    expect = Expectation(plan)
    labels = label_stream(plan, spec.seed, spec.no_label_share, spec.unknown_route_share,
                          spec.preadvice_share, spec.tier)
    stream = zip(itertools.count(), labels, arrival_stream(spec, speed_m_s))
    if spec.parcels is not None:
        stream = itertools.islice(stream, spec.parcels)
    for index, label, arrival in stream:
        yield ShiftParcel(index, label, arrival, *expect.decide(label))


class _Camera:
    """The shift's camera side: images requested ahead of the belt and dropped at the scan."""

    def __init__(self, spec: ShiftSpec, folder):
        cache = None if spec.label_cache is None else \
            (default_cache_dir() if spec.label_cache == "default" else Path(spec.label_cache))
        # Rendering while parcels run must leave the CPU to the controller: lowest priority then.
        self.images = LabelImages(spec.seed, cache, spec.render_workers, layouts=spec.label_layouts,
                                  nice=19 if spec.camera == "ahead" else 10)
        self.folder = FolderCamera(folder)
        self.folder.clear()
        self.late = 0
        self.silent_until_s = 0.0          # a camera fault: nothing uploaded until then (loop time)
        self.withheld = 0
        self._tasks: set[asyncio.Task] = set()

    def request(self, sp: ShiftParcel) -> None:
        self.images.request(sp.index, sp.label)

    def drop(self, sp: ShiftParcel, tracking: int) -> None:
        if asyncio.get_running_loop().time() < self.silent_until_s:
            self.withheld += 1
            self.images.forget(sp.index)
            return
        path = self.images.ready(sp.index)
        if path is not None:
            self.folder.drop(tracking, path)
            self.images.forget(sp.index)
            return
        self.late += 1
        log.warning("label image of parcel %d not rendered in time: the camera delivers it late", sp.index)
        task = asyncio.create_task(self._drop_late(sp, tracking))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drop_late(self, sp: ShiftParcel, tracking: int) -> None:
        self.folder.drop(tracking, await self.images.wait(sp.index, 60.0))
        self.images.forget(sp.index)

    def summary(self) -> dict:
        cpu = sorted(self.images.render_cpu_s)
        return {"rendered": self.images.rendered, "from_cache": self.images.cached, "late": self.late,
                "withheld": self.withheld,
                "render_cpu_ms_p50": round(cpu[len(cpu) // 2] * 1000, 1) if cpu else None,
                "cache": str(self.images.dir)}

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
        await asyncio.get_running_loop().run_in_executor(None, self.images.close)


async def run_shift(config, spec: ShiftSpec, report_path=None, host="127.0.0.1", port=None,
                    stop: asyncio.Event | None = None, on_started=None, also_port=None) -> dict:
    """Run the simulated PLC for one shift and return its ground-truth report.

    The PLC speaks the config's protocol on `port` (default: the config's port) and, when
    `also_port` is given, the other protocol there too: one PLC, both protocols at once.

    `stop` ends the shift early (Ctrl-C): parcels still on the belt are reported as such.
    `on_started(plc)` is called once the PLC listens: tests command faults through the SimPlc it gets.
    """
    from fastpath import load_plan
    stop = stop or asyncio.Event()
    g = config.geometry
    plan = load_plan(config.resolve(config["plan"]["file"]), n_chutes=len(g.chutes))
    _check(spec, g)
    parcels = shift_parcels(spec, plan, g.belt_speed_m_s)
    ahead = collections.deque()
    camera = _Camera(spec, config["camera"]["folder"]) if spec.camera != "off" and spec.parcels != 0 else None
    plc = None
    faults = None
    try:
        if camera is not None:
            first = list(itertools.islice(parcels, None if spec.camera == "all" else spec.render_ahead))
            log.info("rendering %d label images ahead of the run (cache %s)", len(first), camera.images.dir)
            await camera.images.prepare([sp.label for sp in first])
            if spec.camera == "all":
                await asyncio.get_running_loop().run_in_executor(None, camera.images.stop_workers)
            ahead.extend(first)
        plc = _sim_plc(config, spec, host, port or config["plc"]["port"], also_port)
        await plc.start()
        for server in plc.servers:
            log.info("simulated PLC listening on %s", getattr(server, "url", None) or f"{host}:{server.port} (Modbus TCP)")
        if on_started is not None:
            on_started(plc)
        # What start-up built stays for the whole shift: keep it out of the collector's way, so
        # that a full collection in the middle of the shift does not hold a diverter.
        gc.collect()
        gc.freeze()
        faults = FaultRunner(plc, spec.faults, camera)
        if spec.parcels == 0:
            await stop.wait()
        else:
            if spec.wait_for_controller_s is not None:
                await _wait_for_controller(plc.model, spec.wait_for_controller_s, stop)
            await _induct(plc, parcels, ahead, camera, faults, stop, spec)
            await _drain(plc, faults, stop)
    finally:
        if faults is not None:
            await faults.cancel()
        if plc is not None:
            await plc.stop()
        if camera is not None:
            await camera.close()
    model = plc.model
    report = account([*model.finished, *model.parcels.values()], model.counters, rate_per_h=spec.rate_per_h,
                     faults=faults.applied, camera=camera.summary() if camera else None)
    report["arrivals"] = spec.arrivals
    if spec.queue_at_induction:
        report["induction_queue"] = arrivals_mod.queue_summary(
            [p.truth.arrival for p in (*model.finished, *model.parcels.values())])
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=1))
    return report


def _check(spec: ShiftSpec, geometry) -> None:
    """Refuse a shift that cannot run before anything starts, not when its first parcel is due."""
    if spec.camera not in CAMERA_MODES:
        raise ValueError(f"camera mode {spec.camera!r}: use one of {', '.join(CAMERA_MODES)}")
    if spec.camera == "all" and spec.parcels is None:
        raise ValueError("camera mode 'all' renders every image first: it needs a parcel count, not --forever")
    if spec.camera != "off":
        from vision.synth.degrade import tier_name
        tier_name(spec.tier)
    if spec.queue_at_induction and spec.arrivals != "trace":
        raise ValueError("queueing at the induction is for a replayed trace (--trace FILE): generated "
                         "arrivals already keep the belt's minimum gap")
    next(arrival_stream(spec, geometry.belt_speed_m_s), None)
    if spec.queue_at_induction:
        _log_queue(spec, geometry.belt_speed_m_s)


def _log_queue(spec: ShiftSpec, speed_m_s: float) -> None:
    arrivals = _trace(spec, speed_m_s)
    if spec.parcels is not None:
        arrivals = arrivals[:spec.parcels]
    q = arrivals_mod.queue_summary(arrivals)
    log.info("trace %s: %d of %d parcels wait at the induction for a %.2f m gap (longest %.2f s, p95 %.2f s)",
             spec.trace, q["delayed"], q["parcels"], spec.min_gap_m, q["delay_max_s"], q["delay_p95_s"])


async def _induct(plc, parcels, ahead, camera, faults, stop, spec) -> None:
    """Feed parcels to the scan point at their belt positions until the shift's parcels run out."""
    model, belt = plc.model, plc.model.belt
    start_m = belt.position_m() + 0.2 * belt.speed_m_s
    count = 0
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            if not ahead:
                ahead.extend(itertools.islice(parcels, 1))
                if not ahead:
                    return
            sp = ahead.popleft()
            if camera is not None:
                camera.request(sp)
                for nxt in itertools.islice(parcels, max(0, spec.render_ahead - len(ahead))):
                    ahead.append(nxt)
                    camera.request(nxt)
            while True:
                reach = asyncio.ensure_future(belt.reach(start_m + sp.arrival.at_m))
                await asyncio.wait({reach, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stopping.done():
                    reach.cancel()
                    return
                if belt.running and model.powered:   # a fault in the same instant stopped it again
                    break
            p = model.scan(sp, sp.expected, sp.arrival.length_m)
            if camera is not None:
                camera.drop(sp, p.tracking)
            count += 1
            faults.after_parcel(count)
    finally:
        stopping.cancel()


def _sim_plc(config, spec, host: str, port: int, also_port: int | None):
    from drivers.regmap import RegisterMap

    from .opcua_server import OpcUaPlcServer
    plc_cfg = config["plc"]
    opcua_port = port if plc_cfg["protocol"] == "opcua" else also_port
    modbus_port = port if plc_cfg["protocol"] == "modbus" else also_port
    plc = SimPlc(config.geometry, host=host, port=modbus_port or 0, modbus=modbus_port is not None,
                 regmap=RegisterMap(plc_cfg["plc_base"], plc_cfg["edge_base"]),
                 heartbeat_timeout_s=plc_cfg["heartbeat_timeout_ms"] / 1000, chutes=spec.chutes,
                 boot_id=spec.boot_id or random.SystemRandom().randint(1, 0xFFFF), unit=plc_cfg["unit"])
    if opcua_port is not None:
        server = OpcUaPlcServer(host, opcua_port, path=plc_cfg["opcua_path"])
        server.bind_model(plc.model)
        plc.add_server(server)
    return plc


async def _drain(plc, faults, stop, slack_s: float = 5.0) -> None:
    """Wait until every parcel on the belt has landed and every fault in progress has ended."""
    model = plc.model
    loop = asyncio.get_running_loop()
    # Parcels move only while the belt runs, so the clock restarts whenever something holds it.
    moving_since = loop.time()
    while not stop.is_set() and (model.parcels or faults.busy):
        if not model.belt.running or faults.busy:
            moving_since = loop.time()
        elif loop.time() - moving_since > model.geometry.end_m / model.belt.speed_m_s + slack_s:
            log.error("%d parcel(s) still tracked after the belt carried them past the end chute",
                      len(model.parcels))
            return
        await asyncio.sleep(0.05)
    # A PLC keeps its registers after the last parcel: give the controller the time to read the
    # last confirmations before the simulated one goes away.
    deadline = loop.time() + 2.0
    while not stop.is_set() and model.edge_alive() and not model.confirmations_acknowledged() \
            and loop.time() < deadline:
        await asyncio.sleep(0.02)


async def _wait_for_controller(model, timeout_s: float, stop: asyncio.Event) -> None:
    """Parcels start flowing once the controller's heartbeat is seen, as a line would start."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not model.edge_alive():
        if stop.is_set():
            return
        if loop.time() > deadline:
            raise TimeoutError(f"no controller heartbeat within {timeout_s:.0f} s: is `sortline run` started?")
        await asyncio.sleep(0.05)
