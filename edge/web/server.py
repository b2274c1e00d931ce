"""The line screen's web server: the page, its live feed, and the technician actions.

aiohttp runs on the controller's own event loop, so the page reads the controller's memory
directly and an action is an ordinary await between two parcel decisions.
"""
import asyncio
import json
import logging
from pathlib import Path

from aiohttp import web

from drivers.link import bounded

from . import auth
from .i18n import catalogue
from .live import LiveFeed, LiveView, RecordsReader
from .settings import ScreenSettings, TokenFileError, ensure_token_file, read_tokens
from .thumbs import Thumbnails

log = logging.getLogger("sortline.screen")

STATIC = Path(__file__).parent / "static"
ACTION_TIMEOUT_S = 5.0
PLAN_TIMEOUT_S = 60.0             # when the config gives no [plan] reload_timeout_s
KEEPALIVE_S = 15.0
WRITE_TIMEOUT_S = 5.0
MAX_LIVE_PAGES = 32
MAX_NAME_CHARS = 40

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def _error(status: int, key: str, detail: str = "", **fields) -> web.HTTPException:
    body = json.dumps({"error": key, "detail": detail, "fields": fields}, ensure_ascii=False)
    cls = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound, 409: web.HTTPConflict,
           429: web.HTTPTooManyRequests, 503: web.HTTPServiceUnavailable}[status]
    return cls(text=body, content_type="application/json")


@web.middleware
async def _headers(request, handler):
    resp = await handler(request)
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/"):
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


class Screen:
    def __init__(self, controller, settings: ScreenSettings):
        self.controller = controller
        self.settings = settings
        self.sessions = auth.Sessions()
        self.throttle = auth.LoginThrottle()
        self.reader = RecordsReader(controller.records.path)
        self.feed = LiveFeed(LiveView(controller, self.reader))
        self.thumbs = Thumbnails(controller.recent)
        self._act = asyncio.Lock()
        self._pages = 0
        self._runner = None
        self.port = None

    # -- life cycle ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[_headers], client_max_size=16 * 1024)
        app.add_routes([
            web.get("/", self.index),
            web.get("/api/i18n", self.i18n),
            web.get("/api/view", self.view),
            web.get("/api/live", self.live),
            web.get("/api/thumb/{tracking:\\d{1,10}}", self.thumb),
            web.get("/api/session", self.session),
            web.get("/metrics", self.metrics),
            web.post("/api/login", self.login),
            web.post("/api/logout", self.logout),
            web.post("/api/chutes/{number:\\d{1,3}}", self.set_chute),
            web.post("/api/plan/reload", self.reload_plan),
        ])
        app.router.add_static("/static", STATIC)
        return app

    async def start(self) -> None:
        ensure_token_file(self.settings.token_file)
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.bind, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise OSError(exc.errno, f"line screen cannot listen on {self.settings.bind}:{self.settings.port}: "
                                     f"{exc.strerror}; choose another [screen] port in the line config") from None
        self.port = self._runner.addresses[0][1]
        self.feed.start()
        log.info("line screen on http://%s:%d/ (technician tokens in %s)", self.settings.bind, self.port,
                 self.settings.token_file)

    async def stop(self) -> None:
        await self.feed.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        self.reader.close()
        self.thumbs.close()

    # -- reading -------------------------------------------------------------------------------
    async def index(self, request):
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def metrics(self, request):
        """Prometheus scrape: the controller's counters, histograms and state, fresh."""
        self.controller.update_state()
        return web.Response(text=self.controller.metrics.render(), content_type="text/plain",
                            charset="utf-8", headers={"Cache-Control": "no-store"})

    async def i18n(self, request):
        return web.json_response(catalogue(), dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def view(self, request):
        payload = await self.feed.refresh()
        return web.Response(body=payload, content_type="application/json")

    async def live(self, request):
        if self._pages >= MAX_LIVE_PAGES:
            raise _error(503, "busy", f"{MAX_LIVE_PAGES} pages are already open")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        self._pages += 1
        try:
            await resp.prepare(request)
            await bounded(resp.write(b"retry: 2000\n\ndata: " + self.feed.payload + b"\n\n"), WRITE_TIMEOUT_S)
            while not self.feed.closed:
                payload = await self.feed.next(KEEPALIVE_S)
                chunk = b": keep-alive\n\n" if payload is None else b"data: " + payload + b"\n\n"
                # A page that stops reading (a frozen tab, a dead network) is dropped, not waited for.
                await bounded(resp.write(chunk), WRITE_TIMEOUT_S)
        except (ConnectionResetError, asyncio.TimeoutError):
            pass
        finally:
            self._pages -= 1
        return resp

    async def thumb(self, request):
        data = await self.thumbs.get(int(request.match_info["tracking"]))
        if data is None:
            raise _error(404, "no_image")
        return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def session(self, request):
        s = self.sessions.get(request.cookies.get(auth.SESSION_COOKIE))
        return web.json_response({"who": s.who, "csrf": s.csrf} if s else {"who": None})

    # -- technician actions --------------------------------------------------------------------
    async def _json_body(self, request) -> dict:
        if request.content_type != "application/json":
            raise _error(400, "bad_request", "send application/json")
        try:
            body = await request.json()
        except ValueError:
            raise _error(400, "bad_request", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise _error(400, "bad_request", "the body must be a JSON object")
        return body

    def _acting_session(self, request) -> auth.Session:
        s = self.sessions.get(request.cookies.get(auth.SESSION_COOKIE))
        if s is None:
            raise _error(403, "not_logged_in")
        if not auth.csrf_ok(s, request):
            raise _error(403, "csrf")
        return s

    async def login(self, request):
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise _error(403, "csrf")
        body = await self._json_body(request)
        remote = request.remote or "?"
        name = str(body.get("name") or "").strip()[:MAX_NAME_CHARS]
        name = "".join(ch for ch in name if ch.isprintable())
        if self.throttle.blocked(remote):
            raise _error(429, "too_many_tries")
        try:
            tokens = read_tokens(self.settings.token_file)
        except TokenFileError as exc:
            log.error("%s", exc)
            raise _error(503, "bad_token", str(exc)) from None
        bound = auth.match_token(tokens, str(body.get("token") or ""))
        if bound is None:
            self.throttle.failed(remote)
            self.controller.records.action(name or "?", "screen login refused", remote)
            log.warning("line screen: wrong token from %s (name given: %r)", remote, name)
            raise _error(403, "bad_token")
        who = bound or name
        if not who:
            raise _error(400, "name_needed")
        s = self.sessions.open(who)
        self.controller.records.action(who, "screen login", remote)
        resp = web.json_response({"who": s.who, "csrf": s.csrf})
        resp.set_cookie(auth.SESSION_COOKIE, s.id, httponly=True, samesite="Strict", path="/")
        return resp

    async def logout(self, request):
        s = self._acting_session(request)
        self.sessions.close(s.id)
        resp = web.json_response({"who": None})
        resp.del_cookie(auth.SESSION_COOKIE, path="/")
        return resp

    async def set_chute(self, request):
        s = self._acting_session(request)
        body = await self._json_body(request)
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise _error(400, "bad_request", "give \"enabled\": true or false")
        number = int(request.match_info["number"])
        # shield: a slow PLC write still completes; the page is told it was not confirmed in time.
        try:
            async with asyncio.timeout(ACTION_TIMEOUT_S):
                async with self._act:
                    await asyncio.shield(self.controller.set_chute_enabled(number, enabled, who=s.who))
        except ValueError as exc:
            raise _error(404, "no_such_chute", str(exc), chute=number) from None
        except (ConnectionError, TimeoutError) as exc:
            raise _error(503, "plc_unreachable", str(exc) or "no answer in time") from None
        await self.feed.refresh()
        return web.json_response({"chute": number, "enabled": enabled, "who": s.who})

    async def reload_plan(self, request):
        from fastpath import PlanError
        s = self._acting_session(request)
        await self._json_body(request)
        timeout_s = self.controller.config["plan"].get("reload_timeout_s", PLAN_TIMEOUT_S) + ACTION_TIMEOUT_S
        async with self._act:
            task = asyncio.ensure_future(self.controller.reload_plan(who=s.who))
            try:
                version = await bounded(asyncio.shield(task), timeout_s)
            except (PlanError, TimeoutError):
                if not task.done():
                    raise _error(503, "busy", "the plan is still loading") from None
                await self.feed.refresh()
                raise _error(409, "plan_error", self.controller.plan_refused or "") from None
        await self.feed.refresh()
        return web.json_response({"version": version, "who": s.who})


async def start_screen(controller, settings: ScreenSettings) -> Screen | None:
    """The started screen, or None when the line config turns it off ([screen] enabled = false)."""
    if not settings.enabled:
        log.info("line screen turned off in the line config")
        return None
    screen = Screen(controller, settings)
    await screen.start()
    return screen
