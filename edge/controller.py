"""The controller: scan event -> image -> label reading -> routing decision -> assignment.

Time domains: `*_s` values named `..._mono` or taken from `loop.time()` are host monotonic
seconds; PLC encoder counts stay inside the link; wall-clock time appears only in records.
"""
import asyncio
import collections
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from drivers import Confirmation, ScanEvent
from drivers.regmap import DivertResult

log = logging.getLogger("sortline.edge")


@dataclass
class Stats:
    scans: int = 0
    decided: int = 0
    sent: int = 0
    send_failed: int = 0
    past_deadline: int = 0
    confirmations: int = 0
    by_reason: dict = field(default_factory=dict)
    decide_ms: list = field(default_factory=list)


def _read_file(path, budget_ms: float):
    """Worker-thread half of label reading: decode the image and read it, never raising."""
    from vision import read_label
    import cv2
    t0 = time.perf_counter()
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path is not None else None
    spent_ms = (time.perf_counter() - t0) * 1000
    return read_label(img, budget_ms=max(1.0, budget_ms - spent_ms))


class Controller:
    def __init__(self, config, plan, link, images, records, router=None):
        from fastpath import Router
        self.config = config
        self.plan = plan
        self.router = router or Router(plan)
        self.link = link
        self.images = images
        self.records = records
        self.stats = Stats()
        self.decision_budget_s = config.geometry.decision_after_scan_s
        self.image_wait_s = config["camera"]["image_wait_ms"] / 1000
        self.read_budget_ms = config["vision"]["budget_ms"]
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vision")
        self._use_plan_formats(plan)
        self._inflight: set[asyncio.Task] = set()
        self.disabled: set[int] = set()
        self._chute_state_seen = (frozenset(), frozenset(), frozenset())
        self.recent = collections.deque(maxlen=50)     # the last parcels, for the line screen
        self.landed = collections.Counter()            # chute -> parcels confirmed in it
        self.plan_refused: str | None = None           # why the last reload was refused
        self.started_wall = time.time()

    def _use_plan_formats(self, plan) -> None:
        from fastpath import Router
        from vision.waybill import use_plan_formats
        router = Router(plan)
        use_plan_formats(lambda text: router.decide([text], None).courier)

    async def warm_up(self) -> None:
        """Load the readers (imports, model sessions) before the first parcel pays for it."""
        import numpy as np
        from vision import read_label
        blank = np.full((64, 64), 255, np.uint8)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._pool, read_label, blank, 50.0) for _ in range(2)))

    async def run(self, stop: asyncio.Event) -> None:
        await self.warm_up()
        await self.link.start()
        getter = None
        try:
            while not stop.is_set():
                getter = asyncio.ensure_future(self.link.events.get())
                stopper = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if getter in done:
                    self._dispatch(getter.result())
                    getter = None
        finally:
            if getter is not None:
                getter.cancel()
            await self.drain()
            await self.link.stop()
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Finish the parcels in flight: their decisions are still worth sending."""
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=timeout_s)

    def _dispatch(self, event) -> None:
        if isinstance(event, ScanEvent):
            self.stats.scans += 1
            task = asyncio.create_task(self._handle_scan(event))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        elif isinstance(event, Confirmation):
            self.stats.confirmations += 1
            try:
                result = DivertResult(event.result).name
            except ValueError:
                result = f"UNKNOWN_{event.result}"
                log.warning("PLC sent an unknown divert result %d for tracking %d", event.result, event.tracking)
            self.records.confirmed(self.link.status.plc_boot_id or 0, event.tracking, event.chute, result)
            self.landed[event.chute] += 1

    # -- chute state and technician actions --------------------------------------------------
    def _sync_chute_state(self) -> None:
        """Apply the PLC's full/fault bits and the technician's disables between two decisions."""
        full = frozenset(getattr(self.link, "chute_full", ()))
        fault = frozenset(getattr(self.link, "chute_fault", ()))
        seen = (full, fault, frozenset(self.disabled))
        if seen == self._chute_state_seen:
            return
        for chute in set().union(*seen, *self._chute_state_seen):
            self.router.set_chute_state(chute, enabled=chute not in self.disabled,
                                        full=chute in full, faulted=chute in fault)
        self._chute_state_seen = seen

    async def set_chute_enabled(self, chute: int, enabled: bool, who: str = "technician") -> None:
        if self.config.geometry.chute(chute) is None:
            raise ValueError(f"chute {chute} does not exist on this line")
        (self.disabled.discard if enabled else self.disabled.add)(chute)
        self._sync_chute_state()
        self.records.action(who, "enable chute" if enabled else "disable chute", str(chute))
        log.info("%s %s chute %d", who, "enabled" if enabled else "disabled", chute)
        await self.link.set_disabled_chutes(self.disabled)

    async def reload_plan(self, path=None, who: str = "technician") -> str:
        """Build the new plan off the event loop, swap it in between two decisions; keep the old on error."""
        from fastpath import PlanError, load_plan
        path = path or self.config.resolve(self.config["plan"]["file"])
        loop = asyncio.get_running_loop()
        try:
            plan = await loop.run_in_executor(None, lambda: load_plan(path, n_chutes=len(self.config.geometry.chutes)))
        except PlanError as exc:
            self.plan_refused = f"plan {path} refused, plan {self.plan.version} stays active: {exc}"
            self.records.action(who, "reload plan refused", str(exc))
            log.error("%s", self.plan_refused)
            raise
        self.router.swap(plan)
        self.plan, self.plan_refused = plan, None
        self._use_plan_formats(plan)
        self.records.action(who, "reload plan", plan.version)
        log.info("%s loaded plan %s", who, plan.version)
        return plan.version

    def snapshot(self) -> dict:
        """What the line screen shows: state, counts, chutes, the last parcels."""
        st, link = self.stats, self.link.status
        return {
            "line": self.config["line"]["name"],
            "state": "running" if link.connected else "plc-link-lost",
            "message": None if link.connected else
            f"PLC link lost: {link.last_error or 'no answer'}; check the cable and the PLC at {self.link.address}",
            "plan_version": self.plan.version, "plan_refused": self.plan_refused,
            "started_wall": self.started_wall,
            "scans": st.scans, "decided": st.decided, "sent": st.sent, "past_deadline": st.past_deadline,
            "by_reason": dict(st.by_reason), "anomalies": dict(link.anomalies),
            "chutes": [{"number": c.number, "side": c.side, "landed": self.landed.get(c.number, 0),
                        "disabled": c.number in self.disabled,
                        "full": c.number in self._chute_state_seen[0],
                        "faulted": c.number in self._chute_state_seen[1]}
                       for c in self.config.geometry.chutes],
            "recent": list(self.recent),
        }

    async def _handle_scan(self, ev: ScanEvent) -> None:
        loop = asyncio.get_running_loop()
        deadline_mono = ev.received_s + self.decision_budget_s
        times = {}
        path = await self.images.wait(ev.tracking, self.image_wait_s)
        times["image_ms"] = (loop.time() - ev.received_s) * 1000
        t_read = loop.time()
        read = await self._read(path)
        times["read_ms"] = (loop.time() - t_read) * 1000
        self._sync_chute_state()
        t_dec = time.perf_counter()
        decision = self.router.decide(read.waybills, read.routing_code)
        times["decide_ms"] = (time.perf_counter() - t_dec) * 1000
        times["total_ms"] = (loop.time() - ev.received_s) * 1000
        self.stats.decided += 1
        self.stats.decide_ms.append(times["total_ms"])
        self.stats.by_reason[decision.reason.name] = self.stats.by_reason.get(decision.reason.name, 0) + 1
        if loop.time() > deadline_mono:
            self.stats.past_deadline += 1
            log.warning("tracking %d decided %.0f ms after its deadline: the PLC will reject it",
                        ev.tracking, (loop.time() - deadline_mono) * 1000)
        row = self.records.decided(plc_boot=self.link.status.plc_boot_id or 0, tracking=ev.tracking,
                                   scan_seq=ev.seq, read=read, decision=decision,
                                   plan_version=self.plan.version, times=times)
        try:
            await self.link.assign(ev.tracking, decision.chute, int(decision.reason))
        except ConnectionError as exc:
            self.stats.send_failed += 1
            log.error("assignment for tracking %d not sent: %s", ev.tracking, exc)
            return
        self.records.sent(row)
        self.stats.sent += 1
        self.recent.appendleft({"tracking": ev.tracking, "image": str(path) if path else None,
                                "waybills": list(read.waybills), "routing_code": read.routing_code,
                                "sources": read.sources, "no_read_reason": read.no_read_reason,
                                "chute": decision.chute, "reason": decision.reason.name,
                                "destination": decision.destination, "total_ms": round(times["total_ms"], 1),
                                "slack_ms": round((deadline_mono - loop.time()) * 1000, 1)})

    async def _read(self, path):
        from vision.result import no_read
        loop = asyncio.get_running_loop()
        if path is None:
            return no_read("no image from the camera in time")
        fut = loop.run_in_executor(self._pool, _read_file, path, self.read_budget_ms)
        try:
            return await asyncio.wait_for(fut, self.read_budget_ms / 1000 * 2 + 0.05)
        except asyncio.TimeoutError:
            return no_read("label reading overran its budget")
