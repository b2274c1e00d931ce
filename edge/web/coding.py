"""The manual coding table: the page at the end chute where a worker scans a parcel's waybill.

A handheld scanner types the number and Enter into the page. The server answers with what the
running plan decides for a parcel with that one waybill (Controller.decide_waybill: the routing
core itself, with the chute states as they stand), finds the parcel in the records when one of
its reads names the number, and writes the coding into the logbook (Records.action) with who,
when, the waybill, the chute and the parcel's record. A technician who is logged in may add the
waybill and its destination to the pre-advice, in a file the plan already reads, so that the
parcel sorts itself when it is put on the belt again.

A number that is no waybill of any courier is answered, counted and recorded, never an error
page; input that is not a waybill at all (too long, other characters) is refused with what is
wrong, counted, and so is a client that sends faster than any person scans.
"""
import asyncio
import collections
import json
import logging
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from drivers.timed_awaits import bounded
from fastpath.waybill import MAX_CHARS as MAX_WAYBILL_CHARS

from . import auth
from .readonly_records import ReadOnlyRecords
from .thumbs import make_thumbnail

log = logging.getLogger("sortline.screen")

STATIC = Path(__file__).parent / "static"

# A person scans a parcel every few seconds; a scanner that repeats, or a script, is braked.
SCANS_PER_S = 3.0
SCAN_BURST = 10
MAX_CLIENTS_TRACKED = 1024
# The records searched for the parcel, through the scanned_wall index: the last 10 minutes first (a
# parcel reaches the table minutes after its scan), then the hour, then 4 hours. Each hour searched
# costs about 80 ms at 40,000 parcels an hour, and the answer waits for it.
LOOKBACK_S = (600.0, 3600.0, 4 * 3600.0)
# The camera names images by tracking number, which starts again when the PLC restarts: an image
# is the parcel's only when it was written around the parcel's scan.
IMAGE_MATCH_S = 300.0
IMAGES_KEPT = 32
IMAGE_TIMEOUT_S = 2.0
FILE_TIMEOUT_S = 5.0

ACT_CODED = "manual coding"
ACT_NO_COURIER = "manual coding no courier"
ACT_PREADVICE = "pre-advice added"
COUNTS = ("coded", "no_rule", "no_courier", "bad_input", "too_fast", "found_in_records", "preadvice_added")


def _error(status: int, key: str, detail: str = "") -> web.HTTPException:
    """An answer in the screen's own error shape (edge/web/server.py): the page words it by `key`."""
    body = json.dumps({"error": key, "detail": detail, "fields": {}}, ensure_ascii=False)
    cls = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound, 409: web.HTTPConflict,
           422: web.HTTPUnprocessableEntity, 429: web.HTTPTooManyRequests, 503: web.HTTPServiceUnavailable}[status]
    return cls(text=body, content_type="application/json")


class ScanBrake:
    """Scans per client address: SCAN_BURST at once, then SCANS_PER_S (a token bucket)."""

    def __init__(self, per_s: float = SCANS_PER_S, burst: int = SCAN_BURST):
        self.per_s, self.burst = per_s, burst
        self._buckets: collections.OrderedDict[str, list] = collections.OrderedDict()  # client -> [tokens, at]

    def allows(self, client: str) -> bool:
        now = time.monotonic()
        bucket = self._buckets.pop(client, None) or [float(self.burst), now]
        bucket[0] = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.per_s)
        bucket[1] = now
        self._buckets[client] = bucket
        if len(self._buckets) > MAX_CLIENTS_TRACKED:
            self._buckets.popitem(last=False)
        if bucket[0] < 1.0:
            return False
        bucket[0] -= 1.0
        return True


def checked_waybill(value) -> str:
    """The waybill as scanned, stripped; raises ValueError saying what is wrong with it."""
    if not isinstance(value, str):
        raise ValueError("\"waybill\" must be text in quotes")
    text = value.strip()
    if not text:
        raise ValueError("the waybill is empty: scan the label's barcode or type its number")
    if len(text) > MAX_WAYBILL_CHARS:
        raise ValueError(f"{len(text)} characters: a waybill has at most {MAX_WAYBILL_CHARS}; "
                         f"set the scanner to send the code alone, without a prefix or suffix")
    if not (text.isascii() and text.isalnum()):
        raise ValueError("only letters A-Z and digits 0-9 make a waybill: check the scanner's keyboard layout "
                         "and that it sends no prefix, suffix or control characters")
    return text.upper()


def is_waybill(plan, text: str) -> bool:
    """Whether the line takes `text` as a waybill, as its label readers do: a shape of the plan's
    couriers or of the default rules (vision.waybill), or a number the pre-advice lists."""
    from fastpath.waybill import canonical
    from vision.waybill import check_waybill
    return (plan.courier_table.detect(canonical(text)) > 0 or check_waybill(text).valid
            or plan.preadvice_destination(text) is not None)


class ParcelFinder(ReadOnlyRecords):
    """The newest parcel record of the last LOOKBACK_S whose reads name a number."""

    def __init__(self, records_path: Path):
        super().__init__(records_path, "coding-db")

    def _find(self, text: str, now_wall: float) -> dict | None:
        until_wall = float("inf")
        for back_s in LOOKBACK_S:
            found = self._find_between(text, now_wall - back_s, until_wall)
            if found is not None:
                return found
            until_wall = now_wall - back_s
        return None

    def _find_between(self, text: str, since_wall: float, until_wall: float) -> dict | None:
        # `text` is letters and digits only (checked_waybill): no LIKE wildcard can be in it.
        rows = self._connect().execute(
            "SELECT id, plc_boot, tracking, scanned_wall, waybills, read_sources, chute, reason, destination,"
            " confirmed_chute, confirmed_result FROM parcels WHERE scanned_wall >= ? AND scanned_wall < ?"
            " AND (waybills LIKE ? OR read_sources LIKE ?) ORDER BY id DESC LIMIT 8",
            (since_wall, until_wall, f'%"{text}"%', f"%{text}%")).fetchall()
        for row in rows:
            waybills = json.loads(row[4] or "[]")
            sources = json.loads(row[5] or "{}")
            unknown = [t.strip() for t in str(sources.get("unknown_format", "")).split(",")]
            if text in waybills or text in unknown:
                keys = ("row", "plc_boot", "tracking", "scanned_wall", "waybills", "read_sources", "chute",
                        "reason", "destination", "confirmed_chute", "confirmed_result")
                return dict(zip(keys, (*row[:4], waybills, sources, *row[6:])))
        return None

    async def find(self, text: str) -> dict | None:
        try:
            return await self._in_worker(self._find, text, time.time())
        except (sqlite3.Error, TimeoutError) as exc:
            log.warning("manual coding: the records in %s could not be searched for %s: %s", self.path, text, exc)
            return None


def camera_image(folder: Path | None, tracking: int, scanned_wall: float) -> Path | None:
    """The camera's image of a parcel, by its name <tracking>.<ext>, if written around its scan."""
    from edge.camera import IMAGE_EXTS
    if folder is None:
        return None
    for ext in IMAGE_EXTS:
        path = folder / f"{tracking}{ext}"
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if abs(st.st_mtime - scanned_wall) <= IMAGE_MATCH_S:
            return path
    return None


def append_preadvice(path: Path, waybill: str, destination: str) -> None:
    """One record at the end of a pre-advice file, on a line of its own."""
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        lead = b""
        if f.tell():
            f.seek(-1, os.SEEK_END)
            lead = b"" if f.read(1) == b"\n" else b"\n"
        f.write(lead + f"{waybill},{destination}\n".encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


class CodingTable:
    def __init__(self, screen):
        """`screen`: the line screen (edge.web.server.Screen) whose sessions, body checks and log it uses."""
        self.screen = screen
        self.controller = screen.controller
        self.counts: collections.Counter[str] = collections.Counter({k: 0 for k in COUNTS})
        self.brake = ScanBrake()
        self.finder = ParcelFinder(self.controller.records.path)
        folder = getattr(self.controller.images, "folder", None)
        self.camera_folder = Path(folder) if folder is not None else None
        self._images: collections.OrderedDict[int, Path] = collections.OrderedDict()   # record id -> image
        self._thumbs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coding-thumbs")
        self._writing = asyncio.Lock()

    def routes(self) -> list:
        return [
            web.get("/coding", self.page),
            web.post("/api/coding/scan", self.scan),
            web.get("/api/coding/image/{row:\\d{1,12}}", self.image),
            web.post("/api/coding/preadvice", self.add_preadvice),
        ]

    def close(self) -> None:
        self.finder.close()
        self._thumbs.shutdown(wait=False, cancel_futures=True)

    # -- who asks ------------------------------------------------------------------------------
    def _who(self, request) -> str:
        """The technician logged in, else the table and its address: what the logbook names."""
        screen = self.screen
        if screen.parcels_need_login:
            return screen._acting_session(request).who
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise _error(403, "csrf")
        s = screen.sessions.peek(request.cookies.get(auth.SESSION_COOKIE))
        return s.who if s is not None else f"coding table {request.remote or '?'}"

    def _waybill(self, body: dict) -> str:
        """The body's waybill, checked; one that is not a waybill is counted and refused (400)."""
        try:
            return checked_waybill(body.get("waybill"))
        except ValueError as exc:
            self.counts["bad_input"] += 1
            raise _error(400, "bad_waybill", str(exc)) from None

    # -- handlers ------------------------------------------------------------------------------
    async def page(self, request):
        return web.FileResponse(STATIC / "coding.html", headers={"Cache-Control": "no-store"})

    async def scan(self, request):
        client = request.remote or "?"
        if not self.brake.allows(client):
            self.counts["too_fast"] += 1
            self.screen.logs.log("coding-fast", logging.WARNING, "manual coding: more than %d scans at once from %s "
                                 "(then %g a second): refused; a scanner set to repeat, or a program",
                                 SCAN_BURST, client, SCANS_PER_S)
            raise _error(429, "coding_too_fast")
        who = self._who(request)
        body = await self.screen._json_body(request)
        waybill = self._waybill(body)
        controller = self.controller
        # Decided first, on the plan in force now: the records' search below may take a while.
        plan = controller.plan
        answer: dict = {"waybill": waybill, "plan_version": plan.version, "who": who}
        if is_waybill(plan, waybill):
            decision = controller.decide_waybill(waybill)
            kind = "coded" if decision.destination is not None else "no_rule"
            answer.update(chute=decision.chute, reason=decision.reason.name, destination=decision.destination,
                          courier=decision.courier, preadvice=plan.preadvice_destination(waybill),
                          destinations=list(plan.destinations))
            action = ACT_CODED
            detail = f"{waybill} chute {decision.chute} {decision.destination or '-'} {decision.reason.name}"
        else:
            # The line's readers take such a number for no waybill: the parcel stays at the end chute.
            kind, action, detail = "no_courier", ACT_NO_COURIER, waybill
            answer.update(chute=None, reason=None, destination=None, courier=None)
        answer["kind"] = kind
        self.counts[kind] += 1
        parcel = await self.finder.find(waybill)
        answer["parcel"] = None
        if parcel is not None:
            self.counts["found_in_records"] += 1
            answer["parcel"] = await self._parcel_view(parcel)
            detail += f" parcel row {parcel['row']} tracking {parcel['tracking']}"
        controller.records.action(who, action, detail)
        return web.json_response(answer)

    async def _parcel_view(self, parcel: dict) -> dict:
        image = await asyncio.to_thread(camera_image, self.camera_folder, parcel["tracking"], parcel["scanned_wall"])
        if image is not None:
            self._images[parcel["row"]] = image
            self._images.move_to_end(parcel["row"])
            while len(self._images) > IMAGES_KEPT:
                self._images.popitem(last=False)
        return {"row": parcel["row"], "tracking": parcel["tracking"], "scanned_wall": parcel["scanned_wall"],
                "waybills": parcel["waybills"], "chute": parcel["chute"], "reason": parcel["reason"],
                "destination": parcel["destination"], "confirmed_chute": parcel["confirmed_chute"],
                "confirmed_result": parcel["confirmed_result"],
                "image": f"/api/coding/image/{parcel['row']}" if image is not None else None}

    async def image(self, request):
        if not self.screen._may_see_parcels(request):
            raise _error(403, "not_logged_in")
        path = self._images.get(int(request.match_info["row"]))
        if path is None:
            raise _error(404, "no_image")
        loop = asyncio.get_running_loop()
        try:
            data = await bounded(loop.run_in_executor(self._thumbs, make_thumbnail, path), IMAGE_TIMEOUT_S)
        except TimeoutError:
            raise _error(503, "busy", "the image took too long to scale") from None
        except Exception as exc:            # vision.image_input.BadImage and OSError: the file says why
            raise _error(422, "bad_image", f"the image file {path} gives no picture: {exc}") from None
        return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"})

    async def add_preadvice(self, request):
        s = self.screen._acting_session(request)
        body = await self.screen._json_body(request)
        waybill = self._waybill(body)
        plan = self.controller.plan
        destination = body.get("destination")
        if not isinstance(destination, str) or destination not in plan.destinations:
            raise _error(400, "bad_request", "give \"destination\": the name of one of the plan's destinations")
        if "," in destination or "\n" in destination:
            raise _error(409, "preadvice_no_file", f"the destination {destination!r} cannot be written in a "
                                                   f"pre-advice line (it holds a comma or a line break)")
        if plan.preadvice_destination(waybill) == destination:
            return web.json_response({"added": False, "file": None, "waybill": waybill, "destination": destination})
        target = self._preadvice_file(plan)
        async with self._writing:
            try:
                await bounded(asyncio.to_thread(append_preadvice, target, waybill, destination), FILE_TIMEOUT_S)
            except (OSError, TimeoutError) as exc:
                raise _error(503, "preadvice_write", f"{target}: {getattr(exc, 'strerror', None) or exc}") from None
        self.counts["preadvice_added"] += 1
        self.controller.records.action(s.who, ACT_PREADVICE, f"{waybill},{destination} in {target.name}")
        log.info("%s added %s,%s to the pre-advice file %s", s.who, waybill, destination, target)
        reload = "watch" if self.controller.config["plan"]["watch"] else "now"
        if reload == "now":
            # The same reload as the screen's button, in the background: the answer does not wait for it.
            task = asyncio.ensure_future(self.controller.reload_plan(who=s.who))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return web.json_response({"added": True, "file": target.name, "waybill": waybill,
                                  "destination": destination, "reload": reload})

    @staticmethod
    def _preadvice_file(plan) -> Path:
        """The last pre-advice file the plan names: later records win, so a file of the line's own
        additions listed last keeps its word over the couriers' exports."""
        from edge.reload import preadvice_files
        files = preadvice_files(Path(plan.path))
        if not files:
            raise _error(409, "preadvice_no_file", f"the plan {plan.path} names no pre-advice file")
        return files[-1]

    def collect(self):
        from prometheus_client.core import CounterMetricFamily
        family = CounterMetricFamily("sortline_coding_scans", "waybills scanned at the manual coding table, "
                                     "by outcome", labels=["outcome"])
        for key in COUNTS:
            family.add_metric([key], self.counts[key])
        yield family
