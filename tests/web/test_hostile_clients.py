"""The line screen against clients that misbehave: idle and slow sockets, unread live streams, deep JSON,
foreign Host headers, token guessing, and parcel data asked for without a login.

The screen runs on the controller's own event loop, so every test here also checks that the screen
still answers a well-behaved client. Sockets are real, on 127.0.0.1; the whole 127.0.0.0/8 range is
loopback on Linux, so a test can be several clients at once by choosing its source address.
"""
import asyncio
import json
import logging
import socket
import time

import aiohttp
import pytest

from edge.alarms import Alarms
from edge.web import server
from tests.web.conftest import running_line

pytestmark = pytest.mark.timeout(90)

TOKEN = "hostile-tests-shared-token-01"
REAL_SCREEN = "127.0.0.2"          # the source address of the well-behaved client


@pytest.fixture
async def line(tmp_path):
    async with running_line(tmp_path, f"{TOKEN}\n") as (controller, _, screen, _):
        yield controller, screen


def client(screen, source=REAL_SCREEN, **kwargs) -> aiohttp.ClientSession:
    jar = aiohttp.CookieJar(unsafe=True)          # the screen is addressed by IP: keep its cookie
    return aiohttp.ClientSession(f"http://127.0.0.1:{screen.port}", cookie_jar=jar,
                                 connector=aiohttp.TCPConnector(local_addr=(source, 0)),
                                 timeout=aiohttp.ClientTimeout(total=10), **kwargs)


async def still_answers(screen, source=REAL_SCREEN) -> dict:
    async with client(screen, source) as http, http.get("/api/view") as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def raw_socket(screen, source="127.0.0.1", rcvbuf=None):
    """A connected socket that does nothing unless told: the raw material of a hostile client."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", screen.port)), 5)
    return sock


async def closed_by_server(sock, within_s: float) -> bool:
    """True when the screen closed `sock` within `within_s` (whatever it sent before is read and dropped)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    try:
        while loop.time() < deadline:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65536), deadline - loop.time())
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except asyncio.TimeoutError:
        return False
    return False


def live_request(screen) -> bytes:
    return f"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1:{screen.port}\r\n\r\n".encode()


# -- connections -------------------------------------------------------------------------------------
async def test_idle_connections_beyond_the_cap_are_closed_at_once_and_a_real_screen_still_gets_in(line, caplog):
    controller, screen = line
    controller.alarms = getattr(controller, "alarms", None) or Alarms()
    caplog.set_level(logging.INFO)
    socks = [await raw_socket(screen) for _ in range(300)]
    try:
        await asyncio.sleep(0.5)
        closed = await asyncio.gather(*(closed_by_server(s, 2.0) for s in socks))
        kept = server.MAX_CONNECTIONS_PER_CLIENT
        assert sum(closed) == len(socks) - kept, "connections beyond the per-client cap must be closed at once"
        assert screen.refused == len(socks) - kept
        view = await still_answers(screen)
        assert view["state"] == "booting"
        async with client(screen) as http, http.get("/metrics") as r:
            metrics = await r.text()
        assert f"\nsortline_screen_connections_refused_total {len(socks) - kept:.1f}\n" in metrics
        (alarm,) = [a for a in controller.alarms.active() if a.key == "screen_connections"]
        assert alarm.count == len(socks) - kept
        refusal_lines = [r for r in caplog.records if "refused" in r.getMessage() and "connection" in r.getMessage()]
        assert 1 <= len(refusal_lines) <= 3, [r.getMessage() for r in refusal_lines]
    finally:
        for s in socks:
            s.close()


async def test_a_client_that_sends_no_request_is_closed_after_the_header_timeout(line):
    _, screen = line
    idle = await raw_socket(screen)
    slow = await raw_socket(screen)
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def one_byte_a_second():
        # Slowloris: the request line and a header that never ends, one byte a second.
        for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":
            try:
                await loop.sock_sendall(slow, bytes([byte]))
            except OSError:
                return
            await asyncio.sleep(1.0)
    dribble = asyncio.create_task(one_byte_a_second())
    try:
        assert await closed_by_server(idle, server.HEADER_TIMEOUT_S + 2)
        assert await closed_by_server(slow, server.HEADER_TIMEOUT_S + 2)
        assert loop.time() - t0 < server.HEADER_TIMEOUT_S + 2
        await still_answers(screen)
    finally:
        dribble.cancel()
        idle.close()
        slow.close()


async def test_an_idle_keep_alive_connection_is_closed(line):
    _, screen = line
    sock = await raw_socket(screen)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(sock, f"GET /api/session HTTP/1.1\r\nHost: 127.0.0.1:{screen.port}\r\n\r\n".encode())
        assert await closed_by_server(sock, server.KEEPALIVE_IDLE_S + 3)
    finally:
        sock.close()


def test_the_file_limit_is_raised_and_the_cap_stays_a_quarter_of_it():
    import resource
    import subprocess
    import sys

    from tests.conftest import REPO
    code = ("import resource; from edge.web import server; "
            "print(server.raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 600)))
    assert done.stdout.split() == ["600", "600"], done.stderr
    assert server.connection_cap(600) == 150
    assert server.connection_cap(1024) == server.MAX_CONNECTIONS == server.connection_cap(None)


OUT_OF_FILES_SERVER = """
import asyncio, logging, sys
from aiohttp import web
from edge.web import server
logging.basicConfig(level=logging.INFO)

async def main():
    app = web.Application()
    app.router.add_get("/", lambda request: web.Response(text="ok"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # caps far above the file limit: this server runs out of descriptors before they apply
    guard = server.ConnectionGuard(runner.server, 1000, 1000, 60.0, lambda *a: None, lambda *a: None)
    logs = server.LogThrottle(logging.getLogger("sortline.screen"))
    await server._GuardedSite(runner, "127.0.0.1", 0, guard, logs).start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.sleep(float(sys.argv[1]))
    logs.flush_all()

asyncio.run(main())
"""


async def test_out_of_file_descriptors_the_screen_pauses_accepting_with_one_log_line(tmp_path):
    import resource
    import sys

    from tests.conftest import REPO
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OUT_OF_FILES_SERVER, "8", cwd=REPO, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)))
    port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
    loop = asyncio.get_running_loop()
    socks = []
    try:
        for _ in range(120):                    # twice what the server process may open
            sock = socket.socket()
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 1)
            except (OSError, asyncio.TimeoutError):
                pass
            socks.append(sock)
        await asyncio.sleep(3.0)
    finally:
        for sock in socks:
            sock.close()
    await asyncio.sleep(1.5)                    # the pause ends, the queue drains
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        async with http.get(f"http://127.0.0.1:{port}/") as r:
            assert r.status == 200
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    log_text = err.decode()
    assert "Traceback" not in log_text, log_text[-2000:]
    lines = [line for line in log_text.splitlines() if "cannot accept connections" in line]
    assert 1 <= len(lines) <= 2, log_text[-2000:]


# -- live streams ------------------------------------------------------------------------------------
async def read_events(http, n: int, within_s: float = 5.0) -> list[dict]:
    views = []
    async with http.get("/api/live") as r:
        assert r.status == 200, await r.text()
        async with asyncio.timeout(within_s):
            async for line_bytes in r.content:
                if line_bytes.startswith(b"data: ") and len(line_bytes) > 10:
                    views.append(json.loads(line_bytes[6:]))
                    if len(views) == n:
                        return views
    return views


@pytest.mark.parametrize("sources, real", [
    (["127.0.0.1"], "127.0.0.1"),                              # on loopback every page has the same address
    ([f"127.0.0.{i}" for i in range(3, 11)], REAL_SCREEN),
], ids=["one address", "eight addresses"])
async def test_unread_live_streams_do_not_lock_a_real_screen_out(line, sources, real):
    _, screen = line
    loop = asyncio.get_running_loop()
    dead = []
    for i in range(32):
        sock = await raw_socket(screen, sources[i % len(sources)], rcvbuf=4096)
        await loop.sock_sendall(sock, live_request(screen))
        dead.append(sock)
    try:
        await asyncio.sleep(0.5)
        async with client(screen, real) as http:
            assert len(await read_events(http, 2)) == 2
        assert screen.streams.open_count() <= server.MAX_LIVE_STREAMS
    finally:
        for s in dead:
            s.close()


async def test_a_live_stream_whose_client_does_not_read_is_dropped(line):
    _, screen = line
    loop = asyncio.get_running_loop()
    sock = await raw_socket(screen, rcvbuf=4096)
    try:
        await loop.sock_sendall(sock, live_request(screen))
        await asyncio.sleep(1.0)
        assert screen.streams.open_count() == 1
        async with asyncio.timeout(40):
            while screen.streams.open_count():
                await asyncio.sleep(0.5)
    finally:
        sock.close()


# -- request bodies ----------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    "[" * 1900 + "]" * 1900,
    '{"token": ' + "[" * 1900 + "]" * 1900 + "}",
    '{"token": {"a": 1}, "name": "x"}',
    '{"token": "' + TOKEN + '", "name": ["x"]}',
    '"just a string"',
    "{not json",
], ids=["deep list", "deep token", "token not text", "name not text", "not an object", "broken"])
async def test_a_malformed_login_body_gets_a_400_and_no_traceback(line, caplog, body):
    _, screen = line
    caplog.set_level(logging.INFO)
    async with client(screen) as http:
        for _ in range(20):
            async with http.post("/api/login", data=body, headers={"Content-Type": "application/json"}) as r:
                answer = await r.json()
                assert r.status == 400, answer
            assert answer["error"] == "bad_request" and answer["detail"], answer
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 2
    await still_answers(screen)


async def test_malformed_http_is_answered_and_logged_once_without_a_traceback(line, caplog):
    _, screen = line
    caplog.set_level(logging.INFO)
    loop = asyncio.get_running_loop()
    for _ in range(20):
        sock = await raw_socket(screen, REAL_SCREEN)
        try:
            await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n")
            answer = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        finally:
            sock.close()
        assert answer.split(b" ")[1] == b"400", answer[:100]
    assert not [r for r in caplog.records if r.exc_info], "a client's malformed HTTP is no traceback"
    assert len([r for r in caplog.records if "malformed HTTP" in r.getMessage()]) == 1
    await still_answers(screen)


async def test_a_login_body_over_the_size_limit_is_refused(line):
    _, screen = line
    body = json.dumps({"name": "x" * 20_000, "token": TOKEN})
    async with client(screen) as http:
        async with http.post("/api/login", data=body, headers={"Content-Type": "application/json"}) as r:
            assert r.status == 413


# -- Host header -------------------------------------------------------------------------------------
async def get_with_host(screen, path: str, host: str | None) -> tuple[int, str]:
    """GET with exactly this Host header (None: none at all), over a raw socket."""
    sock = await raw_socket(screen, REAL_SCREEN)
    loop = asyncio.get_running_loop()
    try:
        head = f"GET {path} HTTP/1.1\r\n" + (f"Host: {host}\r\n" if host is not None else "") + "Connection: close\r\n\r\n"
        await loop.sock_sendall(sock, head.encode())
        data = b""
        async with asyncio.timeout(5):
            while chunk := await loop.sock_recv(sock, 65536):
                data += chunk
    finally:
        sock.close()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode(errors="replace")


@pytest.mark.parametrize("path", ["/", "/api/view", "/api/live", "/metrics", "/api/thumb/1", "/static/screen.js"])
async def test_a_foreign_host_is_refused_with_how_to_allow_it(line, path):
    _, screen = line
    status, text = await get_with_host(screen, path, f"rebind.example.com:{screen.port}")
    assert status == 421
    assert "rebind.example.com" in text and "allowed_hosts" in text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST.", "[::1]"])
async def test_the_screens_own_names_are_accepted(line, host):
    _, screen = line
    status, _ = await get_with_host(screen, "/api/session", f"{host}:{screen.port}")
    assert status == 200


async def test_a_request_without_a_host_is_refused(line):
    _, screen = line
    status, text = await get_with_host(screen, "/api/session", None)
    assert status == 400 and "Host" in text


async def test_a_site_adds_its_own_name(tmp_path):
    async with running_line(tmp_path, f"{TOKEN}\n", allowed_hosts=("Sorter-3.Line.example",)) as (_, _, screen, _):
        assert (await get_with_host(screen, "/api/session", f"sorter-3.line.example:{screen.port}"))[0] == 200
        assert (await get_with_host(screen, "/api/session", "other.line.example"))[0] == 421


# -- tokens ------------------------------------------------------------------------------------------
async def test_the_right_token_logs_in_however_many_wrong_ones_came_before(line):
    controller, screen = line
    async with client(screen, "127.0.0.1") as guesser, client(screen, "127.0.0.1") as technician:
        async def guess(i):
            async with guesser.post("/api/login", json={"name": "x", "token": f"wrong-token-{i:016d}"}) as r:
                return r.status
        statuses = await asyncio.gather(*(guess(i) for i in range(12)))
        assert sorted(statuses) == [403] * 5 + [429] * 7
        t0 = time.monotonic()
        async with technician.post("/api/login", json={"name": "王工", "token": TOKEN}) as r:
            assert r.status == 200 and (await r.json())["who"] == "王工"
        assert time.monotonic() - t0 < 1.0, "the right token must not wait behind the guesses"
        async with guesser.post("/api/login", json={"name": "x", "token": "wrong-token-again-000000"}) as r:
            assert r.status == 429                      # the guesser is still braked
    controller.records.flush(5.0)       # written by the records thread: wait for it
    refused = controller.records.db.execute(
        "SELECT COUNT(*) FROM actions WHERE action = 'screen login refused'").fetchone()[0]
    assert refused == 5, "a flood of wrong tokens must not flood the logbook"


# -- parcel data beyond loopback ---------------------------------------------------------------------
def add_parcel(controller, tmp_path, tracking=7):
    import cv2
    import numpy as np
    image = tmp_path / "label.jpg"
    cv2.imwrite(str(image), np.full((400, 600), 200, np.uint8))
    controller.recent.appendleft({"tracking": tracking, "image": str(image), "waybills": ["SF1234567890123"],
                                  "routing_code": "571-J25-03", "sources": {"SF1234567890123": "barcode"},
                                  "no_read_reason": None, "chute": 5, "reason": "PREADVICE",
                                  "destination": "Qicun", "total_ms": 80.0, "slack_ms": 150.0})


async def test_parcel_data_needs_a_login_when_the_screen_listens_beyond_loopback(tmp_path):
    async with running_line(tmp_path, f"{TOKEN}\n", bind="0.0.0.0") as (controller, _, screen, _):
        add_parcel(controller, tmp_path)
        await screen.feed.refresh()
        async with client(screen) as http:
            view = await still_answers(screen)
            assert view["recent"] == [] and view["actions"] == [] and view["parcels_hidden"] is True
            assert view["state"] == "booting" and len(view["chutes"]) == 24       # the line itself stays visible
            (live,) = await read_events(http, 1)
            assert live["recent"] == [] and live["parcels_hidden"] is True
            async with http.get("/api/thumb/7") as r:
                assert r.status == 403 and (await r.json())["error"] == "not_logged_in"
            async with http.get("/metrics") as r:             # Prometheus scrapes without a login
                assert r.status == 200
            async with http.post("/api/login", json={"name": "王工", "token": TOKEN}) as r:
                assert r.status == 200
            async with http.get("/api/view") as r:
                view = await r.json()
            assert [p["waybills"] for p in view["recent"]] == [["SF1234567890123"]]
            assert view["recent"][0]["image"] is True, "the page needs to know there is an image, not its path"
            (live,) = await read_events(http, 1)
            assert live["recent"] and not live.get("parcels_hidden")
            async with http.get("/api/thumb/7") as r:
                assert r.status == 200 and r.content_type == "image/jpeg"


async def test_on_loopback_parcel_data_needs_no_login(line, tmp_path):
    controller, screen = line
    add_parcel(controller, tmp_path)
    await screen.feed.refresh()
    view = await still_answers(screen)
    assert view["recent"][0]["tracking"] == 7 and not view.get("parcels_hidden")
    async with client(screen) as http, http.get("/api/thumb/7") as r:
        assert r.status == 200


# -- alarms ------------------------------------------------------------------------------------------
async def test_the_controllers_alarms_are_in_the_view(line):
    controller, screen = line
    controller.alarms = getattr(controller, "alarms", None) or Alarms()
    controller.alarms.raise_("records_backlog", "2,000 parcel records wait to be written",
                             "check the disk of the records folder")
    controller.alarms.raise_("records_backlog", "2,000 parcel records wait to be written",
                             "check the disk of the records folder")
    await screen.feed.refresh()
    view = await still_answers(screen)
    (alarm,) = [a for a in view["alarms"] if a["key"] == "records_backlog"]
    assert alarm["count"] == 2 and alarm["cause"].startswith("2,000") and alarm["since_wall"] <= time.time()
