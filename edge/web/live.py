"""The line screen's view, built once a second from Controller.snapshot() and pushed to every page.

Counts come from the controller's memory; what only the records know (the PLC's verdict on parcels
that were sorted, the logbook) is read from the SQLite records through a read-only connection in
a worker thread, so that the event loop never waits on the disk.

When the screen can be reached from beyond this PC, the view exists twice: whole for logged-in
technicians, and without parcel data (waybills, destinations, the logbook) for everybody else.
"""
import asyncio
import collections
import json
import logging
import sqlite3
import statistics
import time
from dataclasses import dataclass, field

from .i18n import REMEDIES, SORTED_REASONS, STATE_LEVEL, UNREAD_REASONS
from .readonly_records import ReadOnlyRecords

log = logging.getLogger("sortline.screen")

PERIOD_S = 1.0
RATE_WINDOW_S = 60.0
ACTIONS_SHOWN = 6
SETTLE_S = 120.0


class RecordsReader(ReadOnlyRecords):
    """The PLC's verdicts and the logbook for the live view."""

    def __init__(self, path):
        super().__init__(path, "screen-db")
        self._since_wall = None
        self._settled_id = 0
        self._settled = collections.Counter()

    def _plc_failures_and_actions(self, since_wall: float):
        db = self._connect()
        if since_wall != self._since_wall:
            self._since_wall, self._settled_id, self._settled = since_wall, 0, collections.Counter()
        # A parcel's PLC verdict arrives seconds after its decision; rows older than SETTLE_S are
        # final and counted once, so that a tick reads only the last minutes, not the whole shift.
        settle_wall = time.time() - SETTLE_S
        for row_id, reason, result in db.execute(
                "SELECT id, reason, confirmed_result FROM parcels WHERE id > ? AND scanned_wall >= ?"
                " AND scanned_wall < ? ORDER BY id", (self._settled_id, since_wall, settle_wall)):
            self._settled_id = row_id
            if reason in SORTED_REASONS and result not in (None, "DIVERTED"):
                self._settled[result] += 1
        failures = collections.Counter(self._settled)
        for reason, result in db.execute("SELECT reason, confirmed_result FROM parcels WHERE id > ?"
                                         " AND scanned_wall >= ?", (self._settled_id, since_wall)):
            if reason in SORTED_REASONS and result not in (None, "DIVERTED"):
                failures[result] += 1
        actions = [{"at_wall": at, "who": who, "action": action, "detail": detail} for at, who, action, detail in
                   db.execute("SELECT at_wall, who, action, detail FROM actions ORDER BY id DESC LIMIT ?",
                              (ACTIONS_SHOWN,))]
        return dict(failures), actions

    async def plc_failures_and_actions(self, since_wall: float):
        return await self._in_worker(self._plc_failures_and_actions, since_wall)


def chute_roles(plan) -> dict[int, list[str]]:
    """What each chute is for, from the plan: destinations, a courier's own chute, special roles."""
    roles: dict[int, list[str]] = collections.defaultdict(list)
    for group, name in enumerate(plan.destinations, 1):
        for chute in plan.group_chutes[group]:
            roles[chute].append(name)
    for (courier, _), group in plan.override_group.items():
        for chute in plan.group_chutes[group]:
            label = plan.couriers[courier - 1]
            if label not in roles[chute]:
                roles[chute].append(label)
    for role, chute in plan.special.items():
        tag = "@" + role          # the page translates special roles
        if tag not in roles[chute]:
            roles[chute].append(tag)
    return roles


class LiveView:
    """Derived figures (rates, slack, rejects) on top of the controller's snapshot."""

    def __init__(self, controller, reader: RecordsReader):
        self.controller = controller
        self.reader = reader
        self._decided = collections.deque()        # (monotonic s, decided count)
        # By the plan's id, not the plan: holding the replaced plan here would keep it from being
        # freed in small slices between parcels (fastpath.plan.retire).
        self._roles_for = (None, {})

    def _per_minute(self, decided: int) -> float | None:
        now = time.monotonic()
        self._decided.append((now, decided))
        while now - self._decided[0][0] > RATE_WINDOW_S:
            self._decided.popleft()
        t0, d0 = self._decided[0]
        return None if now - t0 < 5.0 else (decided - d0) * 60.0 / (now - t0)

    def _roles(self):
        plan = self.controller.plan
        if self._roles_for[0] != id(plan):
            self._roles_for = (id(plan), chute_roles(plan))
        return self._roles_for[1]

    async def build(self) -> dict:
        c = self.controller
        snap = c.snapshot()
        try:
            failures, actions = await self.reader.plc_failures_and_actions(snap["started_wall"])
        except (sqlite3.Error, asyncio.TimeoutError) as exc:
            log.warning("line screen: records not readable (%s); counts stay, PLC verdicts wait", exc)
            failures, actions = {}, []
        decided, by_reason = snap["decided"], snap["by_reason"]
        rejects = {r: n for r, n in by_reason.items() if r not in SORTED_REASONS and n}
        rejects.update(failures)
        unread = sum(by_reason.get(r, 0) for r in UNREAD_REASONS)
        sorted_ok = sum(by_reason.get(r, 0) for r in SORTED_REASONS) - sum(failures.values())
        slack = [p["slack_ms"] for p in snap["recent"] if p.get("slack_ms") is not None]
        # The page only needs to know that an image exists; where it lies on the disk is not its business.
        snap["recent"] = [{**p, "image": bool(p.get("image"))} for p in snap["recent"]]
        roles = self._roles()
        for chute in snap["chutes"]:
            chute["roles"] = roles.get(chute["number"], [])
        snap.update({
            "now_wall": time.time(),
            "address": c.link.address,
            "link_error": c.link.status.last_error,
            "level": STATE_LEVEL.get(snap["state"], "fault"),
            "remedy": remedy_key(snap["state"], getattr(c.link, "line_state", None), getattr(c.records, "error", None),
                                 getattr(getattr(c, "camera", None), "problem", None)),
            "per_minute": self._per_minute(decided),
            "read_rate": (decided - unread) / decided if decided else None,
            "sort_rate": sorted_ok / decided if decided else None,
            "rejects": dict(sorted(rejects.items(), key=lambda kv: -kv[1])),
            "plc_failures": failures,
            "budget_ms": round(c.decision_budget_s * 1000, 1),
            "slack_ms": {"min": min(slack), "median": statistics.median(slack)} if slack else None,
            "actions": actions,
            "alarms": alarms_of(c, snap),
        })
        return snap


def alarms_of(controller, snap: dict) -> list[dict]:
    """The active alarms: from the snapshot, or straight from the controller's Alarms when the
    snapshot does not carry them; none when the controller keeps no alarms."""
    if "alarms" in snap:
        return snap["alarms"]
    alarms = getattr(controller, "alarms", None)
    return [alarm.as_dict() for alarm in alarms.active()] if alarms is not None else []


def remedy_key(state: str, line_state, records_error, camera_problem=None) -> str | None:
    """Which remedy of i18n.REMEDIES fits the controller's state and its cause."""
    from drivers.regmap import LineState
    if state == "running":
        return None
    if state == "faulted":
        if line_state == LineState.JAM:
            return "jam"
        if line_state == LineState.FAULT:
            return "line-fault"
        if records_error:
            return "records"
        if camera_problem:
            return "camera"
    return state if state in REMEDIES else None


class LiveFeed:
    """One view per second shared by every connected page; a page waits for the next tick."""

    def __init__(self, view: LiveView, period_s: float = PERIOD_S, hide_parcels: bool = False):
        self.view = view
        self.period_s = period_s
        self.hide_parcels = hide_parcels
        self.payload: bytes = b"{}"              # the whole view
        self.public_payload: bytes = b"{}"       # without parcel data when hide_parcels, else the same
        self.closed = False
        self._built_mono = float("-inf")
        self._building = asyncio.Lock()
        self._tick = asyncio.Event()
        self._task = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="screen-feed")

    async def stop(self) -> None:
        self.closed = True
        self._tick.set()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                # The feed's own end, expected; the caller's cancellation (a timeout around the
                # screen's stop) must go on, or its timeout would never fire.
                if asyncio.current_task().cancelling():
                    raise

    async def refresh(self) -> bytes:
        """Build the view now (after an action, so that the page shows its effect at once)."""
        async with self._building:
            await self._build()
        return self.payload

    async def current(self) -> None:
        """Make the payloads at most one period old. A client that asks for the view in a loop
        then costs the controller's event loop no more than the feed's own tick does."""
        async with self._building:
            if time.monotonic() - self._built_mono >= self.period_s:
                await self._build()

    async def _build(self) -> None:
        view = await self.view.build()
        self.payload = json.dumps(view, ensure_ascii=False).encode()
        self.public_payload = (json.dumps({**view, "recent": [], "actions": [], "parcels_hidden": True},
                                          ensure_ascii=False).encode() if self.hide_parcels else self.payload)
        self._built_mono = time.monotonic()
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.closed:          # also ends the feed should a cancellation ever be lost
            t0 = loop.time()
            await self.refresh()
            await asyncio.sleep(max(0.05, self.period_s - (loop.time() - t0)))

    async def next(self, timeout_s: float) -> bool:
        """True when a new view came within `timeout_s`; False otherwise, or when the screen closes."""
        tick = self._tick
        try:
            await asyncio.wait_for(tick.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return not self.closed


@dataclass(eq=False)
class Stream:
    """One open /api/live stream; `drop` ends it at once, whatever its handler is waiting for."""
    client: str
    transport: object                   # the connection's asyncio transport
    opened_mono: float = field(default_factory=time.monotonic)
    dropped: str | None = None          # why it was dropped

    def drop(self, why: str) -> None:
        if self.dropped is None:
            self.dropped = why
            # abort, not close: a client that does not read would keep a closing connection, and
            # its file descriptor, as long as its unsent data waits.
            if self.transport is not None:
                self.transport.abort()


class Streams:
    """The open live streams: at most `per_client` per client address and `total` in all.

    A new stream is never refused. At a limit the oldest stream of the same client goes, or, when
    the total is reached, the oldest stream of the client that holds the most. A page that stopped
    reading (a frozen tab, a dead network, a script that opens streams and never reads) thus makes
    room for a real page instead of locking it out, and one address cannot hold every slot.
    """

    def __init__(self, total: int, per_client: int, on_drop=None):
        self.total, self.per_client = total, per_client
        self.on_drop = on_drop              # on_drop(stream): told of each stream ended to make room
        self._by_client: dict[str, list[Stream]] = {}
        self.dropped = 0                    # streams ended to make room, since start

    def open(self, client: str, transport) -> Stream:
        mine = self._by_client.get(client, [])
        if len(mine) >= self.per_client:
            self._make_room(mine[0], f"more than {self.per_client} live streams from {client}")
        elif self.open_count() >= self.total:
            hog = max(self._by_client.values(), key=lambda streams: (len(streams), -streams[0].opened_mono))
            self._make_room(hog[0], f"more than {self.total} live streams in all")
        stream = Stream(client, transport)
        self._by_client.setdefault(client, []).append(stream)
        return stream

    def close(self, stream: Stream) -> None:
        mine = self._by_client.get(stream.client, [])
        if stream in mine:
            mine.remove(stream)
        if not mine:
            self._by_client.pop(stream.client, None)

    def open_count(self) -> int:
        return sum(len(streams) for streams in self._by_client.values())

    def _make_room(self, stream: Stream, why: str) -> None:
        self.dropped += 1
        stream.drop(why)
        self.close(stream)
        if self.on_drop is not None:
            self.on_drop(stream)
