"""The line screen's web server: the page, its live feed, and the technician actions.

aiohttp runs on the controller's own event loop, so the page reads the controller's memory
directly and an action is an ordinary await between two parcel decisions. The same loop decides
every parcel: nothing a client of the screen does may take it, its file descriptors or its log
away from the line. Hence the limits below, on connections, time, bodies, streams and log lines.
"""
import asyncio
import errno
import json
import logging
import socket
import sys
import time
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from drivers.timed_awaits import bounded

from . import auth
from .coding import CodingTable
from .i18n import catalogue
from .live import LiveFeed, LiveView, RecordsReader, Stream, Streams
from .settings import ScreenSettings, TokenFileError, ensure_token_file, read_tokens
from .thumbs import Thumbnails

log = logging.getLogger("sortline.screen")

STATIC = Path(__file__).parent / "static"
ACTION_TIMEOUT_S = 5.0
PLAN_TIMEOUT_S = 60.0             # when the config gives no [plan] reload_timeout_s
MAX_NAME_CHARS = 40

# Connections. A line screen has a few pages (each browser opens at most 6 connections to it) and a
# Prometheus scraper; 256 is far above that, and it stays a small share of the file descriptors
# that the controller needs for the PLC link, the records, the camera images and the label
# readers: 1024 is a systemd service's default, and the cap is lowered to a quarter of the limit
# should the limit be lower. Without a cap, 20,000 idle connections took every descriptor of the
# process on a site and the PLC link went down with them.
MAX_CONNECTIONS = 256
MAX_CONNECTIONS_PER_CLIENT = 32   # so that one address cannot take every connection
FD_SHARE = 4                      # the cap never exceeds a quarter of the file-descriptor limit
BACKLOG = 128                     # connections the kernel holds until the screen accepts them
ACCEPT_BATCH = 32                 # connections accepted per turn of the event loop
ACCEPT_PAUSE_S = 1.0              # out of file descriptors: accept again after this
HEADER_TIMEOUT_S = 5.0            # a new connection must have sent its request headers by then
KEEPALIVE_IDLE_S = 15.0           # a connection idle between requests is closed after this
BODY_TIMEOUT_S = 5.0              # a request body must have arrived by then
MAX_BODY_BYTES = 4096             # the largest body the screen takes: a login is under 200 bytes

# Live streams (server-sent events, one view a second).
MAX_LIVE_STREAMS = 32
MAX_LIVE_STREAMS_PER_CLIENT = 4   # a browser needs one per open tab
STREAM_KEEPALIVE_S = 15.0
STREAM_WRITE_TIMEOUT_S = 5.0
STREAM_SNDBUF_BYTES = 32 * 1024   # small, so that a client that stops reading is noticed in seconds
STREAM_VIEWS_BEHIND = 2           # views waiting unsent before a stream counts as not read

LOG_EVERY_S = 60.0                # at most one log line per kind of trouble a minute, with a count
ALARM_HOLD_S = 120.0              # the connection alarm clears this long after the last refusal

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
SCREEN = web.AppKey("screen", object)


def _error(status: int, key: str, detail: str = "", **fields) -> web.HTTPException:
    body = json.dumps({"error": key, "detail": detail, "fields": fields}, ensure_ascii=False)
    cls = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound, 408: web.HTTPRequestTimeout,
           409: web.HTTPConflict, 413: web.HTTPRequestEntityTooLarge, 422: web.HTTPUnprocessableEntity,
           429: web.HTTPTooManyRequests,
           503: web.HTTPServiceUnavailable}[status]
    if status == 413:
        return cls(MAX_BODY_BYTES, 0, text=body, content_type="application/json")
    return cls(text=body, content_type="application/json")


# -- log lines, throttled --------------------------------------------------------------------------
class LogThrottle:
    """At most one line per kind of trouble and period; what was held back is counted and said once
    the period is over. A client that misbehaves a thousand times a second then writes one line a
    minute, not 219 MB."""

    def __init__(self, logger: logging.Logger, period_s: float = LOG_EVERY_S):
        self.logger, self.period_s = logger, period_s
        self._kinds: dict[str, list] = {}     # kind -> [last written (monotonic s), held back, last held]

    def log(self, kind: str, level: int, msg: str, *args, exc_info=None) -> None:
        now = time.monotonic()
        state = self._kinds.get(kind)
        if state is not None and now - state[0] < self.period_s:
            if state[1] == 0:
                self._flush_later(kind, state[0] + self.period_s - now)
            state[1] += 1
            state[2] = (level, msg, args)
            return
        self._kinds[kind] = [now, 0, None]
        self.logger.log(level, msg, *args, exc_info=exc_info)

    def _flush_later(self, kind: str, delay_s: float) -> None:
        try:
            asyncio.get_running_loop().call_later(delay_s, self._flush, kind)
        except RuntimeError:           # no loop in this thread: the count goes out with the next line
            pass

    def flush_all(self) -> None:
        """Say what is still held back (at the screen's stop, so that no count is lost)."""
        for kind in list(self._kinds):
            self._flush(kind)

    def _flush(self, kind: str) -> None:
        state = self._kinds.get(kind)
        if state is None or state[1] == 0:
            return
        held, (level, msg, args) = state[1], state[2]
        self._kinds[kind] = [time.monotonic(), 0, None]
        self.logger.log(level, msg + " (%d like this in the last %g s)", *args, held, self.period_s)


class _HttpLog(logging.LoggerAdapter):
    """aiohttp's own error log, throttled. Malformed HTTP is the client's fault and its traceback
    says nothing about the screen: one line without it. Any other error keeps its traceback, since
    it is a fault of the screen, but at most one a minute."""

    def __init__(self, throttle: LogThrottle):
        super().__init__(throttle.logger, {})
        self.throttle = throttle

    def log(self, level, msg, *args, exc_info=None, **kwargs):
        if not self.isEnabledFor(level):
            return
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1] if exc_info else None
        if isinstance(exc, HttpProcessingError):
            self.throttle.log("bad-http", logging.INFO, "line screen: malformed HTTP (" + msg + "): %s",
                              *args, str(exc).strip()[:200])
        else:
            self.throttle.log("http:" + msg, level, "line screen: " + msg, *args, exc_info=exc_info)


# -- connections -----------------------------------------------------------------------------------
def raise_fd_limit() -> int | None:
    """Raise this process's soft limit on open files to its hard limit; the limit that applies
    afterwards, None where the platform has no such limit."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return None if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return want
    except (ValueError, OSError):
        return soft


def connection_cap(fd_limit: int | None) -> int:
    """The most connections the screen takes under a file-descriptor limit (None: no limit)."""
    if fd_limit is None:
        return MAX_CONNECTIONS
    return max(8, min(MAX_CONNECTIONS, fd_limit // FD_SHARE))


class ConnectionGuard:
    """Counts the open connections, in all and per client address, against the caps.

    It also closes a connection whose request headers do not arrive within `header_timeout_s`.
    That timer is the guard's own, not aiohttp's keep-alive timer: that one also starts with the
    connection today, but nothing in aiohttp's interface promises it."""

    def __init__(self, server, limit: int, per_client: int, header_timeout_s: float, on_refused, on_slow):
        self.server = server                  # aiohttp's protocol factory (web.Server)
        self.limit, self.per_client, self.header_timeout_s = limit, per_client, header_timeout_s
        self.on_refused, self.on_slow = on_refused, on_slow
        self.open = 0
        self.by_client: dict[str, int] = {}
        self._waiting: dict[object, "_Guarded"] = {}      # aiohttp handler -> connection without a request yet

    def admit(self, client: str) -> str | None:
        """None if `client` may open one more connection (it is counted), else why not."""
        if self.open >= self.limit:
            return f"{self.open} connections open, the most the screen takes"
        if self.by_client.get(client, 0) >= self.per_client:
            return f"{self.per_client} connections open from {client}, the most from one address"
        self.open += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        return None

    def release(self, client: str) -> None:
        self.open -= 1
        left = self.by_client.get(client, 1) - 1
        if left:
            self.by_client[client] = left
        else:
            self.by_client.pop(client, None)

    def await_headers(self, handler, guarded: "_Guarded") -> None:
        self._waiting[handler] = guarded

    def forget(self, handler) -> None:
        self._waiting.pop(handler, None)

    def request_started(self, handler) -> None:
        """From the first middleware: the request headers of `handler`'s connection have arrived."""
        guarded = self._waiting.pop(handler, None)
        if guarded is not None:
            guarded.headers_arrived()


class _Guarded(asyncio.Protocol):
    """One admitted connection, handed to aiohttp's own protocol, which gets every event."""

    def __init__(self, guard: ConnectionGuard, client: str):
        self.guard, self.client = guard, client
        self.handler = None
        self._timer = None
        self._transport = None
        self._counted = True

    def connection_made(self, transport) -> None:
        self._transport = transport
        self.handler = self.guard.server()
        self.handler.connection_made(transport)
        self.guard.await_headers(self.handler, self)
        self._timer = asyncio.get_running_loop().call_later(self.guard.header_timeout_s, self._too_slow)

    def headers_arrived(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        self.guard.forget(self.handler)
        self.guard.on_slow(self.client)
        self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.handler is not None:
            self.handler.data_received(data)

    def eof_received(self):
        return self.handler.eof_received() if self.handler is not None else None

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()

    def connection_lost(self, exc) -> None:
        self.release()
        if self.handler is None:
            return
        self.headers_arrived()
        self.guard.forget(self.handler)
        handler, self.handler = self.handler, None
        handler.connection_lost(exc)

    def release(self) -> None:
        """Uncount this connection, once, whichever way it ends."""
        if self._counted:
            self._counted = False
            self.guard.release(self.client)


class _Listener:
    """The screen's listening sockets, accepted by hand rather than by asyncio's server.

    A connection over a cap is closed right after accept(), before asyncio builds a transport
    and a task for it: about a tenth of the work, which under a flood of thousands of
    connections a second is the difference between a loop held 50 ms and one held 5 ms. At most
    ACCEPT_BATCH connections are taken per turn of the loop; the others wait in the kernel. And a
    process out of file descriptors pauses accepting for a second with one log line, where
    asyncio would log a traceback each time."""

    def __init__(self, host: str, port: int, guard: ConnectionGuard, logs: "LogThrottle"):
        self.guard, self.logs = guard, logs
        self.loop = asyncio.get_running_loop()
        self.sockets = _listening_sockets(host, port)
        self._starting: set[asyncio.Task] = set()
        self._paused = False
        for sock in self.sockets:
            self.loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        for sock in self.sockets:
            self.loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets = []

    def _accept(self, listening: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, peer = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._pause(exc)
                return                              # a connection that went away while queued
            client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
            why = self.guard.admit(client)
            if why is not None:
                conn.close()
                self.guard.on_refused(client, why)
                continue
            conn.setblocking(False)
            task = self.loop.create_task(self._serve(conn, _Guarded(self.guard, client)))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _serve(self, conn: socket.socket, guarded: _Guarded) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: guarded, conn)
        except OSError:
            conn.close()
            guarded.release()

    def _pause(self, exc: OSError) -> None:
        self.logs.log("accept", logging.ERROR, "line screen: cannot accept connections (%s): the process is out "
                      "of file descriptors; the screen tries again in %g s", exc.strerror, ACCEPT_PAUSE_S)
        if self._paused:
            return
        self._paused = True
        for sock in self.sockets:
            self.loop.remove_reader(sock.fileno())
        self.loop.call_later(ACCEPT_PAUSE_S, self._resume)

    def _resume(self) -> None:
        self._paused = False
        for sock in self.sockets:
            self.loop.add_reader(sock.fileno(), self._accept, sock)


def _listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for `host` ("" or "0.0.0.0": every IPv4 address), as asyncio would make them."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _GuardedSite(web.BaseSite):
    """A TCP site whose connections pass the guard first."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, guard: ConnectionGuard, logs: "LogThrottle"):
        super().__init__(runner, backlog=BACKLOG)
        self._host, self._port, self._guard, self._logs = host, port, guard, logs

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        self._server = _Listener(self._host, self._port, self._guard, self._logs)


# -- middlewares -----------------------------------------------------------------------------------
@web.middleware
async def _guard_requests(request, handler):
    screen = request.app[SCREEN]
    screen.guard.request_started(request.protocol)
    host = request.headers.get("Host")
    if host is None:
        return web.Response(status=400, text="send a Host header naming the line screen\n")
    local = request.transport.get_extra_info("sockname") if request.transport is not None else None
    if not screen.hosts.allows(host, local[0] if local else None):
        return screen.foreign_host(request, host)
    return await handler(request)


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
        # Parcel data (waybills, destinations, label images, the logbook) needs a login when the
        # screen can be reached from beyond this PC; the line's state and figures do not.
        self.parcels_need_login = not settings.loopback_only
        self.feed = LiveFeed(LiveView(controller, self.reader), hide_parcels=self.parcels_need_login)
        self.thumbs = Thumbnails(controller.recent)
        self.logs = LogThrottle(log)
        self.streams = Streams(MAX_LIVE_STREAMS, MAX_LIVE_STREAMS_PER_CLIENT, on_drop=self._stream_dropped)
        self.hosts = None                    # HostCheck, with this PC's names, from start()
        self.guard = None
        self.refused = 0                     # connections refused at the caps since start (metrics)
        self.slow = 0                        # connections closed for sending no request in time
        self._i18n = json.dumps(catalogue(), ensure_ascii=False).encode()
        self._act = asyncio.Lock()
        self._runner = None
        self.port = None
        self.coding = None                   # CodingTable, from app()

    @property
    def alarms(self):
        """Where the screen raises its own alarm: the controller's alarms, if it keeps any."""
        return getattr(self.controller, "alarms", None)

    # -- life cycle ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        # _headers outermost: the answers of the guard (a foreign name) carry the headers too.
        app = web.Application(middlewares=[_headers, _guard_requests], client_max_size=MAX_BODY_BYTES)
        app[SCREEN] = self
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
        self.coding = CodingTable(self)          # the manual coding table
        app.add_routes(self.coding.routes())
        return app

    async def start(self) -> None:
        ensure_token_file(self.settings.token_file)
        limit = self._connection_limit()
        self.hosts = auth.HostCheck(self.settings.bind, self.settings.loopback_only, await _machine_names(),
                                    self.settings.allowed_hosts)
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0,
                                     keepalive_timeout=KEEPALIVE_IDLE_S, logger=_HttpLog(self.logs))
        await self._runner.setup()
        self.guard = ConnectionGuard(self._runner.server, limit, min(MAX_CONNECTIONS_PER_CLIENT, limit),
                                     HEADER_TIMEOUT_S, self._refused, self._too_slow)
        site = _GuardedSite(self._runner, self.settings.bind, self.settings.port, self.guard, self.logs)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise OSError(exc.errno, f"line screen cannot listen on {self.settings.bind}:{self.settings.port}: "
                                     f"{exc.strerror}; choose another [screen] port in the line config") from None
        self.port = self._runner.addresses[0][1]
        self.feed.start()
        self.controller.metrics.add(self)
        self.controller.metrics.add(self.coding)
        log.info("line screen on http://%s:%d/ (technician tokens in %s; at most %d connections)",
                 self.settings.bind, self.port, self.settings.token_file, limit)
        if self.parcels_need_login:
            log.info("line screen reachable beyond this PC: parcel data needs a technician login")

    def _connection_limit(self) -> int:
        fd_limit = raise_fd_limit()
        limit = connection_cap(fd_limit)
        if limit < MAX_CONNECTIONS:
            log.warning("this process may open only %d files: the line screen takes at most %d connections; "
                        "raise LimitNOFILE of the controller's service to 1024 or more", fd_limit, limit)
        return limit

    async def stop(self) -> None:
        self.controller.metrics.remove(self)
        if self.coding is not None:
            self.controller.metrics.remove(self.coding)
            self.coding.close()
        await self.feed.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        self.reader.close()
        self.thumbs.close()
        self.logs.flush_all()

    # -- what the guards report ----------------------------------------------------------------
    def _refused(self, client: str, why: str) -> None:
        self.refused += 1
        self.logs.log("refused", logging.WARNING, "line screen: refused a connection from %s: %s; sorting is "
                      "not affected", client, why)
        if self.alarms is not None:
            limit = self.guard.limit
            self.alarms.raise_(
                "screen_connections",
                f"the line screen refused connections: more than {limit} were open at once, or more than "
                f"{self.guard.per_client} from one address",
                "find the program or device that opens them (the log names its address) and stop it; "
                "sorting is not affected and the screen keeps serving the others",
                hold_s=ALARM_HOLD_S, level=logging.WARNING)

    def _too_slow(self, client: str) -> None:
        self.slow += 1
        self.logs.log("slow", logging.INFO, "line screen: closed a connection from %s that sent no request "
                      "within %g s", client, HEADER_TIMEOUT_S)

    def _stream_dropped(self, stream: Stream) -> None:
        self.logs.log("stream", logging.INFO, "line screen: ended a live stream of %s: %s", stream.client,
                      stream.dropped)

    def foreign_host(self, request, host: str) -> web.Response:
        name = auth.host_name(host)[:100]
        self.logs.log("host", logging.WARNING, "line screen: refused a request from %s for the name %r: a page "
                      "elsewhere pointing its name at this PC, or a name of this PC the screen does not know "
                      "(add it to [screen] allowed_hosts)", request.remote, name)
        return web.Response(status=421, text=(
            f"This line screen does not answer to the name '{name}'. Open it by this PC's own name or address, "
            f"or, if '{name}' is this PC's name on the site's network, add it to allowed_hosts under [screen] "
            f"in the line config (allowed_hosts = \"{name}\") and restart the controller.\n"))

    # -- reading -------------------------------------------------------------------------------
    def _may_see_parcels(self, request) -> bool:
        return not self.parcels_need_login or self.sessions.peek(request.cookies.get(auth.SESSION_COOKIE)) is not None

    def _view_for(self, request) -> bytes:
        return self.feed.payload if self._may_see_parcels(request) else self.feed.public_payload

    async def index(self, request):
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def metrics(self, request):
        """Prometheus scrape: the controller's registry, fresh, as on [metrics] listen.

        No login: a scraper has none, and the figures name no parcel. The Host check still applies,
        so a page elsewhere cannot read them through a name of its own. Prometheus scrapes the
        address of its own (edge/metrics_http.py); this one is for a look from the line PC."""
        from ..metrics import CONTENT_TYPE
        self.controller.update_state()
        return web.Response(body=self.controller.metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})

    def collect(self):
        """The screen's own figures, in the controller's registry while the screen runs."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        guard = self.guard
        yield CounterMetricFamily("sortline_screen_connections_refused", "connections the line screen closed at "
                                  "once because of its caps", value=self.refused)
        yield CounterMetricFamily("sortline_screen_connections_slow", "connections closed for not sending their "
                                  "request headers in time", value=self.slow)
        yield GaugeMetricFamily("sortline_screen_connections_open", "connections open to the line screen",
                                value=guard.open if guard is not None else 0)
        yield GaugeMetricFamily("sortline_screen_live_streams", "live streams open", value=self.streams.open_count())

    async def i18n(self, request):
        return web.Response(body=self._i18n, content_type="application/json", charset="utf-8")

    async def view(self, request):
        await self.feed.current()
        return web.Response(body=self._view_for(request), content_type="application/json")

    async def live(self, request):
        stream = self.streams.open(request.remote or "?", request.transport)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        try:
            _small_send_buffer(request.transport)
            await resp.prepare(request)
            await self._send(resp, stream, b"retry: 2000\n\ndata: " + self._view_for(request) + b"\n\n")
            while not self.feed.closed and stream.dropped is None:
                new = await self.feed.next(STREAM_KEEPALIVE_S)
                if stream.dropped is not None:
                    break
                await self._send(resp, stream, b"data: " + self._view_for(request) + b"\n\n" if new
                                 else b": keep-alive\n\n")
        except (ConnectionError, asyncio.TimeoutError) as exc:
            # A page that stops reading (a frozen tab, a dead network) is dropped, not waited for.
            if stream.dropped is None:
                stream.drop(f"not reading ({type(exc).__name__})")
                self._stream_dropped(stream)
        finally:
            self.streams.close(stream)
        return resp

    async def _send(self, resp, stream: Stream, chunk: bytes) -> None:
        transport = stream.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the page went away")
        if transport.get_write_buffer_size() > STREAM_VIEWS_BEHIND * max(len(chunk), len(self.feed.payload)):
            raise ConnectionResetError(f"{transport.get_write_buffer_size()} bytes wait unsent")
        await bounded(resp.write(chunk), STREAM_WRITE_TIMEOUT_S)

    async def thumb(self, request):
        if not self._may_see_parcels(request):
            raise _error(403, "not_logged_in")
        tracking = int(request.match_info["tracking"])
        data = await self.thumbs.get(tracking)
        if data is None:
            why = self.thumbs.refused(tracking)
            # An image that is there but gives no picture says why (a camera set to 30000 x 30000).
            raise _error(422, "bad_image", why) if why else _error(404, "no_image")
        return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    async def session(self, request):
        s = self.sessions.get(request.cookies.get(auth.SESSION_COOKIE))
        return web.json_response({"who": s.who, "csrf": s.csrf} if s else {"who": None})

    # -- technician actions --------------------------------------------------------------------
    async def _json_body(self, request) -> dict:
        """The body as a JSON object, or a 400 that says what is wrong with it (never a traceback)."""
        if request.content_type != "application/json":
            raise _error(400, "bad_request", "send application/json")
        try:
            raw = await bounded(request.read(), BODY_TIMEOUT_S)
        except web.HTTPRequestEntityTooLarge:
            raise _error(413, "bad_request", f"the body is larger than {MAX_BODY_BYTES} bytes") from None
        except TimeoutError:
            raise _error(408, "bad_request", f"the body did not arrive within {BODY_TIMEOUT_S:g} s") from None
        try:
            body = json.loads(raw)
        except RecursionError:
            raise _error(400, "bad_request", "the JSON is nested too deeply: send one flat object, "
                                             "for example {\"name\": \"...\", \"token\": \"...\"}") from None
        except ValueError as exc:
            raise _error(400, "bad_request", f"the body is not JSON ({str(exc)[:80]})") from None
        if not isinstance(body, dict):
            raise _error(400, "bad_request", "the body must be a JSON object, {...}")
        return body

    @staticmethod
    def _text(body: dict, key: str) -> str:
        value = body.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise _error(400, "bad_request", f"\"{key}\" must be text in quotes")
        return value

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
        token, name = self._text(body, "token"), self._text(body, "name")
        remote = request.remote or "?"
        name = "".join(ch for ch in name.strip()[:MAX_NAME_CHARS] if ch.isprintable())
        try:
            tokens = read_tokens(self.settings.token_file)
        except TokenFileError as exc:
            self.logs.log("token-file", logging.ERROR, "%s", exc)
            raise _error(503, "bad_token", str(exc)) from None
        # The token is checked before any brake: the right one always logs in (see LoginThrottle).
        bound = auth.match_token(tokens, token)
        if bound is None:
            await self._wrong_token(remote, name)
        who = bound or name
        if not who:
            raise _error(400, "name_needed")
        s = self.sessions.open(who)
        self.controller.records.action(who, "screen login", remote)
        resp = web.json_response({"who": s.who, "csrf": s.csrf})
        resp.set_cookie(auth.SESSION_COOKIE, s.id, httponly=True, samesite="Strict", path="/")
        return resp

    async def _wrong_token(self, remote: str, name: str):
        delay_s = self.throttle.failed(remote)
        if delay_s == 0:
            self.controller.records.action(name or "?", "screen login refused", remote)
            self.logs.log("wrong-token", logging.WARNING, "line screen: wrong token from %s (name given: %r)",
                          remote, name)
            raise _error(403, "bad_token")
        self.logs.log("guessing", logging.WARNING, "line screen: more than %d wrong tokens within %g s from %s: "
                      "answered after up to %g s and no longer written to the logbook one by one",
                      auth.FAILURES_ALLOWED, auth.FAILURE_WINDOW_S, remote, auth.MAX_DELAY_S)
        await asyncio.sleep(delay_s)
        raise _error(429, "too_many_tries")

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


def _small_send_buffer(transport) -> None:
    """A live stream's socket keeps little unsent data, so that a client that stops reading fills
    it within seconds and is dropped (see Screen._send), instead of after megabytes."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF_BYTES)
        except OSError:
            pass


async def _machine_names() -> list[str]:
    """This PC's names: its host name, short and fully qualified. The qualified name may need DNS,
    which the line network may not have: it is asked off the event loop and for a second at most."""
    names = [socket.gethostname()]
    names.append(names[0].split(".")[0])
    try:
        loop = asyncio.get_running_loop()
        names.append(await bounded(loop.run_in_executor(None, socket.getfqdn), 1.0))
    except (OSError, TimeoutError):
        pass
    return names


async def start_screen(controller, settings: ScreenSettings) -> Screen | None:
    """The started screen, or None when the line config turns it off ([screen] enabled = false)."""
    if not settings.enabled:
        log.info("line screen turned off in the line config")
        return None
    screen = Screen(controller, settings)
    await screen.start()
    return screen
