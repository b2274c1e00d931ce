"""The line keeps sorting while the screen's port is flooded.

`sortline run` runs as on a site, in its own process, with the file-descriptor limit of a systemd
service (1024, soft and hard); the simulated PLC runs in another process. This test is the hostile
network: 2,000 idle sockets that come back when the screen closes them, slowloris sockets that send
one header byte a second, and beside them a real screen that asks for the view every second from an
address of its own.
"""
import asyncio
import datetime
import json
import resource
import signal
import socket
import sqlite3
import sys

import aiohttp
import pytest

from tests.conftest import REPO, free_port

pytestmark = pytest.mark.timeout(240)

TOKEN = "siege-tests-shared-token-0001"
PARCELS, RATE_PER_H, SEED = 150, 12000, 7
FD_LIMIT = 1024
IDLE_SOCKETS, SLOW_SOCKETS = 2000, 50
RAMP_S = 2.0                       # the idle sockets open over this time, not in one burst of the test's CPU
REOPEN_AFTER_S = 2.0
MAX_LOG_BYTES = 200_000


def line_config(tmp_path):
    from edge.config_copy import derive_config
    (tmp_path / "tokens.txt").write_text(f"{TOKEN}\n")
    (tmp_path / "tokens.txt").chmod(0o600)
    return derive_config(REPO / "configs" / "county-24.toml", tmp_path / "line.toml", {
        "plc": {"port": free_port()}, "camera": {"folder": str(tmp_path / "camera")},
        "records": {"folder": str(tmp_path / "records")}, "plan": {"watch": False},
        "screen": {"enabled": True, "bind": "127.0.0.1", "port": free_port(),
                   "token_file": str(tmp_path / "tokens.txt")}})


def site_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


async def connect(port: int, source: str):
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((source, 0))
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 3.0)
    except (OSError, asyncio.TimeoutError):
        sock.close()
        return None
    return sock


async def idle_socket(port: int, stop: asyncio.Event, opened: list, start_after_s: float) -> None:
    """Connects and sends nothing; opens again a while after the screen closes it."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(start_after_s)
    while not stop.is_set():
        sock = await connect(port, "127.0.0.1")
        if sock is not None:
            opened.append(1)
            try:
                while await loop.sock_recv(sock, 4096):
                    pass
            except OSError:
                pass
            finally:
                sock.close()
        await asyncio.sleep(REOPEN_AFTER_S)


async def slow_socket(port: int, stop: asyncio.Event) -> None:
    """Slowloris: a request whose headers never end, one byte a second."""
    loop = asyncio.get_running_loop()
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Wait: " + b"a" * 1000
    while not stop.is_set():
        sock = await connect(port, "127.0.0.3")
        if sock is not None:
            try:
                for byte in request:
                    await loop.sock_sendall(sock, bytes([byte]))
                    await asyncio.sleep(1.0)
            except OSError:
                pass
            finally:
                sock.close()
        await asyncio.sleep(1.0)


async def real_screen(port: int, stop: asyncio.Event, answers: list) -> None:
    """A new connection every second from 127.0.0.2, as a page that reloads would make."""
    timeout = aiohttp.ClientTimeout(total=3)
    while not stop.is_set():
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0), force_close=True)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                async with http.get(f"http://127.0.0.1:{port}/api/view") as r:
                    answers.append((await r.json())["decided"] if r.status == 200 else f"HTTP {r.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            answers.append(repr(exc))
        await asyncio.sleep(1.0)


async def wait_for_the_link(port: int, run, within_s: float = 90.0) -> None:
    """Until the screen answers and the controller has its PLC: only then does the flood start, so
    that its thousands of client ports cannot take the simulated PLC's port before it listens."""
    async with asyncio.timeout(within_s):
        while True:
            assert run.returncode is None, "sortline run ended before its screen answered"
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
                    async with http.get(f"http://127.0.0.1:{port}/api/view") as r:
                        if r.status == 200 and (await r.json()).get("state") not in (None, "booting", "plc-link-lost"):
                            return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.5)


def logged_at(line: str) -> datetime.datetime:
    return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")


async def test_the_line_keeps_sorting_while_the_screen_port_is_flooded(tmp_path):
    from edge.config import load_config
    path = line_config(tmp_path)
    config = load_config(path)
    port = config["screen"]["port"]
    report_path, log_path = tmp_path / "sim-report.json", tmp_path / "run.log"
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(path), "--parcels", str(PARCELS),
        "--rate", str(RATE_PER_H), "--seed", str(SEED), "--report", str(report_path), cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    with open(log_path, "wb") as log_file:
        run = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge.cli", "run", "--config", str(path), cwd=REPO,
            stdout=log_file, stderr=log_file, preexec_fn=site_fd_limit)
    stop, opened, answers = asyncio.Event(), [], []
    tasks = []
    try:
        await wait_for_the_link(port, run)
        tasks = [asyncio.create_task(idle_socket(port, stop, opened, RAMP_S * i / IDLE_SOCKETS))
                 for i in range(IDLE_SOCKETS)]
        tasks += [asyncio.create_task(slow_socket(port, stop)) for _ in range(SLOW_SOCKETS)]
        tasks.append(asyncio.create_task(real_screen(port, stop, answers)))
        _, err = await asyncio.wait_for(sim.communicate(), 180)
        assert sim.returncode == 0, err.decode()[-3000:]
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if sim.returncode is None:
            sim.kill()
            await sim.wait()
        if run.returncode is None:
            run.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(run.wait(), 30)
            except asyncio.TimeoutError:
                run.kill()
                await run.wait()
    log_text = log_path.read_text(errors="replace")
    report = json.loads(report_path.read_text())
    with sqlite3.connect(f"file:{tmp_path / 'records' / 'parcels.sqlite'}?mode=ro", uri=True) as db:
        recorded = db.execute("SELECT COUNT(*), COUNT(reason) FROM parcels").fetchone()
        last_scan = datetime.datetime.fromtimestamp(db.execute("SELECT MAX(scanned_wall) FROM parcels").fetchone()[0])

    assert len(opened) >= IDLE_SOCKETS, "the flood did not reach the screen"
    assert report["parcels"] == PARCELS
    assert recorded == (PARCELS, PARCELS), "every parcel must have its record with its decision"
    assert report["late"] == 0 and "NO_HEARTBEAT" not in report["by_reason"], report["by_reason"]
    # The simulated PLC closes the link when its shift is over, after the last parcel: that one is
    # expected; so is a PLC not listening yet while the controller boots.
    assert not [line for line in log_text.splitlines() if "PLC link lost" in line and "state booting ->" not in line
                and logged_at(line) < last_scan], "the PLC link went down during the shift"
    failed = [a for a in answers if not isinstance(a, int)]
    assert len(answers) >= 20 and not failed, f"the real screen was refused: {failed[:5]} of {len(answers)}"
    assert answers[-1] > answers[0], "the real screen saw the counts move"
    assert "Traceback" not in log_text, log_text[-3000:]
    assert len(log_text.encode()) < MAX_LOG_BYTES, f"{len(log_text)} bytes of log"
    refusal_lines = [line for line in log_text.splitlines() if "refused a connection" in line]
    assert 2 <= len(refusal_lines) <= 4, refusal_lines          # the first, then counts once a minute or at the end
    assert "like this in the last 60 s" in refusal_lines[-1]
