"""The controller: scan event -> image -> label reading -> routing decision -> assignment.

Time domains are kept apart by name: `*_mono` is host monotonic time in seconds (deadlines,
stage budgets), `*_wall` is wall-clock time (records, people), and PLC encoder counts stay in
the link. A wall clock that jumps therefore never moves a deadline.
"""
import asyncio
import collections
import gc
import logging
import time
from dataclasses import dataclass, field

from drivers import Confirmation, ScanEvent
from drivers.regmap import DivertResult, LineState
from vision.result import with_preadvised

from .alarms import Alarms
from .camera_health import CameraHealth, Image
from .code_reader import CodeReader, open_code_reader
from .loop_watch import LoopWatch
from .metrics import ControllerMetrics
from .readers import UNDECODABLE, ReaderPool, default_size
from .scale import open_scale
from .state import StateTracker, derive
from .weight_rule import weighed_decision

log = logging.getLogger("sortline.edge")

PRUNE_EVERY_S = 60.0
# Scans without any assignment reaching the PLC, for this long: the line is not sorting.
NOT_DECIDING_SCANS = 5
NOT_DECIDING_S = 3.0
IMAGES_PRUNE_EVERY_S = 10.0


@dataclass
class Stats:
    scans: int = 0
    decided: int = 0
    sent: int = 0
    send_failed: int = 0
    past_deadline: int = 0
    skipped_already_sent: int = 0
    internal_errors: int = 0
    confirmations: int = 0
    by_reason: dict = field(default_factory=dict)


class Controller:
    def __init__(self, config, plan, link, images, records, router=None, alarms: Alarms | None = None,
                 plan_clock=None):
        from fastpath import Router
        self.alarms = alarms or Alarms()
        self.loop_watch = LoopWatch(self.alarms)
        self.config = config
        self.plan = plan
        self.router = router or Router(plan)
        self.link = link
        self.images = images
        self.records = records
        self.stats = Stats()
        self.metrics = ControllerMetrics(self)       # reads the figures below at every scrape
        self.state = StateTracker()
        self.camera = CameraHealth(str(getattr(images, "folder", "the camera's folder")))
        self.decision_budget_s = config.geometry.decision_after_scan_s
        self.poll_lag_s = config["plc"]["poll_interval_ms"] / 1000
        self.image_wait_s = config["camera"]["image_wait_ms"] / 1000
        self.read_budget_s = config["vision"]["budget_ms"] / 1000
        # Kept back from every deadline: the decision itself and writing it to the PLC.
        self.margin_s = (config["budgets"]["decide_ms"] + config["budgets"]["assign_ms"]) / 1000
        when_needed = config["vision"]["text_reading"] == "when-needed"
        self.readers = ReaderPool(default_size(), plan.courier_table, routing_shapes=plan.routing_shapes,
                                  text_needed=(lambda read: not self._barcode_routes(read)) if when_needed else None,
                                  hedge=config["vision"]["hedge_reads"])
        self._inflight: set[asyncio.Task] = set()
        self._booted = False
        self._has_run = False
        # A chute a technician disabled stays disabled across a restart, until enabled again.
        kept = records.disabled_chutes()
        self.disabled: set[int] = {c for c in kept if config.geometry.chute(c) is not None}
        if kept - self.disabled:
            log.warning("chutes %s were left disabled but are not on this line any more: ignored",
                        sorted(kept - self.disabled))
        if self.disabled:
            log.warning("chutes %s stay disabled, as a technician left them; enable them on the line screen",
                        sorted(self.disabled))
        self._chute_state_seen: tuple[frozenset[int], ...] = (frozenset(), frozenset(), frozenset())
        self._chute_bits_raw = self._chute_state_seen
        self._line_chutes = frozenset(c.number for c in config.geometry.chutes)
        self._contact = None                           # the link's newest PlcContact, once handled
        self._unanswered = 0                           # scans since the last assignment that reached the PLC
        self._unanswered_since_mono = 0.0
        self.recent: collections.deque[dict] = collections.deque(maxlen=50)   # the last parcels, for the screen
        self.landed: collections.Counter[int] = collections.Counter()       # chute -> parcels confirmed in it
        self.verdicts: collections.Counter[str] = collections.Counter()     # PLC divert result -> parcels
        self.plan_refused: str | None = None           # why the last reload was refused
        # The line config's plan schedule (edge/plan_schedule.py), started with the reload triggers;
        # plan_clock gives it the local wall time (datetime.now unless given).
        self.plan_schedule = None
        self.plan_clock = plan_clock
        self.started_wall = time.time()
        # A smart code reader beside the camera ([reader] in the line config), or None.
        self.code_reader = open_code_reader(config, self.alarms)
        # A scale or dimensioner before the scan point ([scale]), or None.
        self.scale = open_scale(config, self.alarms)

    # -- life cycle ------------------------------------------------------------------------------
    async def warm_up(self) -> None:
        """Start the label readers (imports, model sessions) before the first parcel pays for it."""
        usable, message = await self.readers.start()
        (log.info if usable else log.error)("text model: %s", message)
        log.info("%d label reader processes running", self.readers.running)

    async def run(self, stop: asyncio.Event) -> None:
        from .reload import ReloadTriggers
        # The link first: after a restart the PLC's rings are read (and acknowledged) while the
        # readers load; events wait in the link's queue meanwhile. The heartbeat waits for the
        # readers: until then the PLC sorts on its own rather than wait for a late answer.
        self.link.hold_heartbeat(True)
        if self.disabled:
            await self.link.set_disabled_chutes(self.disabled)      # sent as soon as the link is up
        await self.link.start()
        if self.code_reader is not None:
            self.code_reader.use_plan(self.plan)
            await self.code_reader.start()
        if self.scale is not None:
            await self.scale.start()
        await self.warm_up()
        # Everything loaded so far lives all day: keep it out of the collector's full passes,
        # which otherwise stall every thread for tens of milliseconds in the middle of a parcel.
        gc.collect()
        gc.freeze()
        self._booted = True
        self.link.hold_heartbeat(False)
        watcher = asyncio.create_task(self._watch_state(stop), name="state-watch")
        self.loop_watch.start()
        reloads = ReloadTriggers(self)
        await reloads.start()
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
            await reloads.stop()
            await self.drain()
            watcher.cancel()
            self.loop_watch.stop()
            await self.link.stop()
            await self.readers.stop()
            if self.code_reader is not None:
                await self.code_reader.stop()
            if self.scale is not None:
                await self.scale.stop()

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Finish the parcels in flight: their decisions are still worth sending."""
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=timeout_s)

    async def _watch_state(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_prune_mono = loop.time()
        next_images_mono = loop.time()
        keep_images = self.config["camera"]["keep_images"]
        pruning = None
        while not stop.is_set():
            self.update_state()
            self.readers.check_hung()
            if self.records.pending:
                self.records.flush()
            if loop.time() >= next_prune_mono:
                # One small batch at a time; a backlog of old rows is worked off a batch a minute.
                self.records.prune()
                next_prune_mono = loop.time() + PRUNE_EVERY_S
            if keep_images and loop.time() >= next_images_mono and (pruning is None or pruning.done()):
                # Off the loop: the folder listing and the deletions are file system calls.
                pruning = asyncio.ensure_future(asyncio.to_thread(self.images.prune, keep_images))
                next_images_mono = loop.time() + IMAGES_PRUNE_EVERY_S
            await asyncio.sleep(0.1)

    def update_state(self):
        line_state = getattr(self.link, "line_state", None)
        self._has_run = self._has_run or line_state == LineState.RUNNING
        state, message = derive(booted=self._booted, link_status=self.link.status, link_address=self.link.address,
                                line_state=line_state, has_run=self._has_run, records_error=self.records.error,
                                camera_problem=self.camera.problem, not_deciding=self._not_deciding(),
                                records_remedy=self._remedy_of("records_write"))
        report = self.state.update(state, message)
        self.alarms.set("camera", self.camera.alarm if line_state == LineState.RUNNING else None)
        self.alarms.set("plan_refused", (self.plan_refused, "correct the plan file and save it again (sortline "
                                         "check-config names what is wrong); the line sorts with the active plan "
                                         "meanwhile") if self.plan_refused else None, level=logging.WARNING)
        return report

    def _remedy_of(self, key: str) -> str | None:
        return next((a.remedy for a in self.alarms.active() if a.key == key), None)

    def _not_deciding(self) -> str | None:
        """Parcels keep coming but none has had its assignment for a while: the line is not sorting,
        whatever else looks well (the screen must not stay green)."""
        waited_s = time.monotonic() - self._unanswered_since_mono
        if self._unanswered < NOT_DECIDING_SCANS or waited_s < NOT_DECIDING_S or not self.link.status.connected:
            self.alarms.clear("not_deciding")
            return None
        since = time.strftime("%H:%M:%S", time.localtime(time.time() - waited_s))
        cause = (f"{self._unanswered} parcels came since {since} and none of them got a chute from this controller: "
                 f"they all go to the end chute")
        remedy = "look at the other alarms and the log for why; restarting the controller (systemctl restart sortline) "\
                 "is safe meanwhile"
        self.alarms.raise_("not_deciding", cause, remedy)
        return f"{cause}; {remedy}"

    # -- events ------------------------------------------------------------------------------------
    def _dispatch(self, event) -> None:
        if self.link.contact is not self._contact:
            self._contact = self.link.contact
            self._new_contact(self._contact)
        if isinstance(event, ScanEvent):
            self.stats.scans += 1
            if not self._unanswered:
                self._unanswered_since_mono = event.received_s
            self._unanswered += 1
            task = asyncio.create_task(self._handle_scan_guarded(event))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        elif isinstance(event, Confirmation):
            self._confirmed(event)

    def _confirmed(self, event: Confirmation) -> None:
        self.stats.confirmations += 1
        try:
            result = DivertResult(event.result).name
        except ValueError:
            result = f"UNKNOWN_{event.result}"
            log.warning("PLC sent an unknown divert result %d for tracking %d", event.result, event.tracking)
        self.records.confirmed(self.link.status.plc_boot_id or 0, event.tracking, event.chute, result)
        self.metrics.confirmations.inc(result)
        self.verdicts[result] += 1
        self.landed[event.chute] += 1

    def _new_contact(self, contact) -> None:
        """A PLC that has forgotten what this controller recorded under the same boot id (its scan
        numbers stand lower, or it holds no acknowledgement from the controller) has started
        counting again (a memory reset): its tracking numbers belong to new parcels."""
        if contact is None:
            return
        highest = self.records.highest_scan_seq(contact.boot)
        if highest is None or (contact.scan_seq >= highest and contact.scan_ack != 0):
            return
        self.records.renumbered(contact.boot)
        self._numbers_reused(contact.boot, f"its newest scan event is number {contact.scan_seq} and it holds "
                             f"acknowledgement {contact.scan_ack}, but this controller has recorded scan event "
                             f"{highest} under that boot id")

    def _numbers_reused(self, boot: int, detail: str) -> None:
        self.alarms.raise_(
            "plc_numbers_reused",
            f"the PLC at {self.link.address} numbers its parcels again under the same boot id {boot} ({detail}): "
            f"a memory reset, a CPU swap or a program download that cleared its retentive data; the parcels are "
            f"decided and recorded as new ones",
            "keep BOOT_ID and the tracking counter in retentive memory and add 1 to BOOT_ID at every PLC start "
            "(docs/plc-interface.md, PLC restart)", hold_s=3600)

    async def _handle_scan_guarded(self, ev: ScanEvent) -> None:
        """A defect met by one parcel must not stop the next: the PLC sends this one to the end chute."""
        try:
            await self._handle_scan(ev)
        except Exception as exc:
            self.stats.internal_errors += 1
            self.alarms.raise_("internal_error", f"a parcel (tracking {ev.tracking}) could not be decided: "
                               f"{type(exc).__name__}: {exc}",
                               "the PLC sends such parcels to the end chute; send the controller's log to "
                               "support", hold_s=600)
            if self.stats.internal_errors <= 3 or self.stats.internal_errors % 1000 == 0:
                log.exception("parcel tracking %d not decided (%d such so far)", ev.tracking,
                              self.stats.internal_errors)

    async def _handle_scan(self, ev: ScanEvent) -> None:
        loop = asyncio.get_running_loop()
        boot = self.link.status.plc_boot_id or 0
        if ev.reused:
            self._numbers_reused(boot, f"tracking number {ev.tracking} came again for another parcel")
        elif self.records.already_sent(boot, ev.tracking):
            self.stats.skipped_already_sent += 1       # decided before a restart: the PLC has it
            self._unanswered = 0
            return
        # The PLC saw the parcel up to one poll before the link did.
        scanned_mono = ev.received_s - self.poll_lag_s
        deadline_mono = scanned_mono + self.decision_budget_s
        times: dict[str, float] = {}
        if self.code_reader is None:
            path, read = await self._image_read(ev, deadline_mono, times)
        else:
            path, read = await self._read_with_code_reader(self.code_reader, ev, scanned_mono, deadline_mono, times)
        self._sync_chute_state()
        t_dec = time.perf_counter()
        # A number of no courier's format that the pre-advice lists is a waybill all the same; the
        # readers cannot tell (the pre-advice lives in this process), so it is taken here.
        read = with_preadvised(read, self._preadvised)
        decision = self.router.decide(read.waybills, read.routing_code)
        # Only a weighing already here counts: the parcel never waits for the scale.
        weighing = self.scale.weighing_for(ev.tracking) if self.scale is not None else None
        if weighing is not None:
            decision = weighed_decision(self.plan, self.router, decision, weighing.weight_kg, weighing.longest_mm)
        times["decide_ms"] = (time.perf_counter() - t_dec) * 1000
        times["total_ms"] = (loop.time() - ev.received_s) * 1000
        self._count(read, decision, times, deadline_mono - loop.time())
        committed = self.records.decided(plc_boot=boot, tracking=ev.tracking, scan_seq=ev.seq, read=read,
                                         decision=decision, plan_version=self.plan.version, times=times,
                                         new_parcel=ev.reused, weighing=weighing)
        if committed is not None:
            # The row first, so that a kill -9 never loses a decision the PLC has (a commit takes
            # well under a millisecond); but a slow disk or a locked database gets half the time
            # left at most, the other half stays for the assignment's own way to the PLC.
            await asyncio.wait({committed}, timeout=self._left(deadline_mono) / 2)
        try:
            await self.link.assign(ev.tracking, decision.chute, int(decision.reason), until_mono=deadline_mono)
        except ConnectionError as exc:
            self.stats.send_failed += 1
            self.alarms.raise_("assignment_not_sent", f"assignments did not reach the PLC before the parcels' "
                               f"decision points ({self.stats.send_failed} since start; last: tracking "
                               f"{ev.tracking}: {exc})",
                               f"check the cable and the PLC at {self.link.address}; the PLC sends such parcels to "
                               f"the end chute", hold_s=60)
            log.error("assignment for tracking %d not sent (%s): the PLC sends it to the end chute", ev.tracking, exc)
            return
        self.records.sent(boot, ev.tracking)
        self.stats.sent += 1
        self._unanswered = 0
        self.recent.appendleft({"tracking": ev.tracking, "image": str(path) if path else None,
                                "waybills": list(read.waybills), "routing_code": read.routing_code,
                                "sources": read.sources, "no_read_reason": read.no_read_reason,
                                "chute": decision.chute, "reason": decision.reason.name,
                                "destination": decision.destination, "total_ms": round(times["total_ms"], 1),
                                "slack_ms": round((deadline_mono - loop.time()) * 1000, 1)})

    async def _image_read(self, ev: ScanEvent, deadline_mono: float, times: dict, image=None):
        """The parcel's image (`image`: its wait, already started) and what the label readers read on it."""
        loop = asyncio.get_running_loop()
        if image is None:
            image = self.images.wait(ev.tracking, min(self.image_wait_s, self._left(deadline_mono)))
        path = await image
        times["image_ms"] = (loop.time() - ev.received_s) * 1000
        t_read = loop.time()
        read = await self._read(path, deadline_mono)
        times["read_ms"] = (loop.time() - t_read) * 1000
        self.camera.seen(Image.MISSING if path is None else
                         Image.UNDECODABLE if (read.no_read_reason or "").startswith(UNDECODABLE) else Image.USABLE,
                         read.no_read_reason)
        return path, read

    # -- the smart code reader (edge/code_reader.py) ---------------------------------------------
    async def _read_with_code_reader(self, reader: CodeReader, ev: ScanEvent, scanned_mono: float,
                                     deadline_mono: float, times: dict):
        """The code reader's codes first, the image awaited meanwhile and read only when the codes do
        not route the parcel (no read, no result in time, a waybill the pre-advice does not know)."""
        from .code_reader_read import combined, label_read
        loop = asyncio.get_running_loop()
        image = asyncio.ensure_future(self.images.wait(ev.tracking, min(self.image_wait_s, self._left(deadline_mono))))\
            if reader.read_images else None
        # While most parcels need their image anyway (little pre-advice, many no reads), it is read
        # as soon as it is there instead of after the reader's result.
        early = asyncio.ensure_future(self._image_read(ev, deadline_mono, times, image)) \
            if image is not None and reader.images_needed() else None
        try:
            result = await reader.result_for(ev.tracking, scanned_mono, until_mono=deadline_mono - self.margin_s)
            codes = label_read(result, (loop.time() - ev.received_s) * 1000, reader.wait_s * 1000, self._preadvised)
            routed = image is None or self._barcode_routes(codes)
            reader.note_routed(routed)
            if routed:
                times["image_ms"], times["read_ms"] = (loop.time() - ev.received_s) * 1000, 0.0
                return None, codes
            path, read = await (early or self._image_read(ev, deadline_mono, times, image))
            return path, combined(codes, read)
        finally:
            for task in (early, image):
                if task is not None and not task.done():
                    task.cancel()

    def _left(self, deadline_mono: float) -> float:
        return max(0.0, deadline_mono - self.margin_s - asyncio.get_running_loop().time())

    def _count(self, read, decision, times, slack_s: float) -> None:
        st, m = self.stats, self.metrics
        st.decided += 1
        st.by_reason[decision.reason.name] = st.by_reason.get(decision.reason.name, 0) + 1
        m.parcels.inc(decision.reason.name)
        m.reads.inc("multi_read" if len(read.waybills) > 1 else "read" if read.waybills or read.routing_code
                    else "no_read")
        for stage in ("image", "read", "decide", "total"):
            m.stage.observe(times[f"{stage}_ms"] / 1000, stage)
        m.slack.observe(max(0.0, slack_s))
        if slack_s < 0:
            st.past_deadline += 1
            m.late.inc()
            log.warning("a parcel was decided %.0f ms after its decision point: the PLC sends it to the end chute",
                        -slack_s * 1000)

    async def _read(self, path, deadline_mono: float):
        """Read the label within the vision budget and what is left before the deadline."""
        from vision.result import no_read
        if path is None:
            return no_read("no image from the camera in time (camera stage budget spent)")
        # What is kept back for deciding and sending is not the reader's.
        return await self.readers.read(path, self.read_budget_s * 1000, until_mono=deadline_mono - self.margin_s)

    def _barcode_routes(self, read) -> bool:
        """One waybill from the barcode, found in the couriers' pre-advice: the printed routing
        code cannot change the decision (pre-advice comes first), so it is not read."""
        return len(read.waybills) == 1 and self.plan.preadvice_destination(read.waybills[0]) is not None

    # -- chute state and technician actions --------------------------------------------------
    def _sync_chute_state(self) -> None:
        """Apply the PLC's full/fault bits and the technician's disables between two decisions."""
        raw = (frozenset(getattr(self.link, "chute_full", ())), frozenset(getattr(self.link, "chute_fault", ())),
               frozenset(self.disabled))
        if raw == self._chute_bits_raw:
            return
        self._chute_bits_raw = raw
        full, fault, disabled = raw
        strays = (full | fault) - self._line_chutes
        # A spare or miswired sensor input: ignored, since no parcel is ever sent to such a chute.
        self.alarms.set("chute_bits_unknown", (
            f"the PLC reports chutes {sorted(strays)} full or faulted, but this line has no such chutes "
            f"(chutes {min(self._line_chutes)}-{max(self._line_chutes)}): the bits are ignored",
            "check the full and fault sensor inputs of the PLC and their mapping to CHUTE_FULL / CHUTE_FAULT "
            "(docs/plc-interface.md), or the chute list in the line config") if strays else None,
            level=logging.WARNING)
        seen = (full & self._line_chutes, fault & self._line_chutes, disabled)
        for chute in set().union(*seen, *self._chute_state_seen):
            self.router.set_chute_state(chute, enabled=chute not in self.disabled,
                                        full=chute in seen[0], faulted=chute in seen[1])
        self._chute_state_seen = seen

    async def set_chute_enabled(self, chute: int, enabled: bool, who: str = "technician") -> None:
        if self.config.geometry.chute(chute) is None:
            raise ValueError(f"chute {chute} does not exist on this line")
        (self.disabled.discard if enabled else self.disabled.add)(chute)
        self._sync_chute_state()
        self.records.action(who, "enable chute" if enabled else "disable chute", str(chute))
        log.info("%s %s chute %d", who, "enabled" if enabled else "disabled", chute)
        await self.link.set_disabled_chutes(self.disabled)

    def decide_waybill(self, waybill: str):
        """The decision the running plan gives a parcel scanned with this one waybill, now, with
        the chute states as they stand (the manual coding table asks for it between two parcels)."""
        self._sync_chute_state()
        return self.router.decide([waybill], None)

    def _preadvised(self, text: str) -> bool:
        return self.plan.preadvice_destination(text) is not None

    def use_plan(self, plan, who: str) -> None:
        """Swap in a plan built and checked off the loop, between two decisions: references only.
        The label readers get its courier formats and routing-code shapes (a few hundred bytes);
        the replaced plan is freed in slices between parcels (fastpath.plan.retire)."""
        from fastpath.plan import retire
        retire(self.plan, asyncio.get_running_loop())
        self.plan, self.plan_refused = plan, None
        self.readers.use_plan(plan.courier_table, plan.routing_shapes)
        if self.code_reader is not None:
            self.code_reader.use_plan(plan)
        self.records.action(who, "reload plan", plan.version)

    def refuse_plan(self, path, who: str, why: str) -> None:
        """A reload refused: the active plan stays, and the screen, the logbook and the log say why."""
        self.plan_refused = f"plan {path} refused, plan {self.plan.version} stays active: {why}"
        self.records.action(who, "reload plan refused", why)
        log.error("%s", self.plan_refused)

    async def reload_plan(self, path=None, who: str = "technician") -> str:
        """Build and check the new plan off the event loop, swap it in between two decisions; keep the old on error."""
        from .reload import reload_plan
        return await reload_plan(self, path, who)

    def snapshot(self) -> dict:
        """What the line screen shows: state, counts, chutes, the last parcels."""
        st, link = self.stats, self.link.status
        report = self.state.report
        return {
            "line": self.config["line"]["name"],
            "state": report.state.value, "message": report.message, "state_since_wall": report.since_wall,
            "alarms": [a.as_dict() for a in self.alarms.active()],
            "plan_version": self.plan.version, "plan_refused": self.plan_refused,
            "plan_schedule": self.plan_schedule.status() if self.plan_schedule is not None else None,
            "started_wall": self.started_wall,
            "scans": st.scans, "decided": st.decided, "sent": st.sent, "past_deadline": st.past_deadline,
            "by_reason": dict(st.by_reason), "plc_results": dict(self.verdicts), "anomalies": dict(link.anomalies),
            "chutes": [{"number": c.number, "side": c.side, "landed": self.landed.get(c.number, 0),
                        "disabled": c.number in self.disabled,
                        "full": c.number in self._chute_state_seen[0],
                        "faulted": c.number in self._chute_state_seen[1]}
                       for c in self.config.geometry.chutes],
            "code_reader": self.code_reader.snapshot() if self.code_reader is not None else None,
            "scale": self.scale.snapshot() if self.scale is not None else None,
            "recent": list(self.recent),
        }
