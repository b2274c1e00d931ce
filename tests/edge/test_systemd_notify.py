"""systemd's notify protocol on a real unix datagram socket: READY=1 once ready, WATCHDOG=1 from the
event loop while it turns, none while it is blocked, STOPPING=1 at the end."""
import asyncio
import socket
import threading
import time

import pytest

from edge.systemd_notify import Notifier

pytestmark = pytest.mark.timeout(30)

WATCHDOG_USEC = 400_000          # keep-alives every 0.2 s


class Systemd:
    """The receiving end of $NOTIFY_SOCKET: a thread of its own stamps each datagram as it arrives,
    whatever the event loop under test is doing."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.path = str(path)
        self.got: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            now = time.monotonic()
            with self._lock:
                self.got += [(now, field) for field in data.decode().split("\n")]

    def drain(self) -> list[tuple[float, str]]:
        with self._lock:
            return list(self.got)

    def times(self, field: str) -> list[float]:
        return [t for t, f in self.drain() if f == field]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def systemd(tmp_path):
    peer = Systemd(tmp_path / "notify.sock")
    yield peer
    peer.close()


def env(systemd, **more) -> dict:
    return {"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": str(WATCHDOG_USEC), **more}


async def test_ready_once_then_keep_alives_that_stop_while_the_loop_is_blocked(systemd):
    ready = False
    notifier = Notifier(env(systemd))
    assert notifier.watchdog_s == 0.4
    task = asyncio.create_task(notifier.run(ready=lambda: ready, status=lambda: "running" if ready else "booting"))
    await asyncio.sleep(0.5)
    assert systemd.times("READY=1") == [], "READY=1 only once the controller is ready"
    assert len(systemd.times("WATCHDOG=1")) >= 2, "keep-alives start before READY (loading takes a while)"
    ready = True
    await asyncio.sleep(0.5)
    assert len(systemd.times("READY=1")) == 1
    assert [f for _, f in systemd.drain() if f.startswith("STATUS=")] == ["STATUS=booting", "STATUS=running"]
    beats = systemd.times("WATCHDOG=1")
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    # Every half period (0.2 s) while the loop turns; never a whole period apart, when systemd would kill.
    assert max(gaps) < 0.4, f"keep-alives while the loop turns: {gaps}"

    blocked_from = time.monotonic()
    time.sleep(1.0)                          # the event loop hangs: nothing may be sent meanwhile
    blocked_until = time.monotonic()
    assert not [t for t in systemd.times("WATCHDOG=1") if blocked_from + 0.01 < t < blocked_until]
    await asyncio.sleep(0.6)
    after = [t for t in systemd.times("WATCHDOG=1") if t >= blocked_until]
    assert len(after) >= 2, "the keep-alives resume with the loop"
    assert len(systemd.times("READY=1")) == 1

    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.1)
    assert systemd.drain()[-1][1] == "STOPPING=1"


async def test_outside_systemd_nothing_is_sent_and_nothing_fails(systemd):
    notifier = Notifier({})
    assert not notifier.active and notifier.watchdog_s is None
    assert notifier.send("READY=1") is False
    await asyncio.wait_for(notifier.run(ready=lambda: True), 1)      # returns at once


def test_a_watchdog_meant_for_another_process_is_not_fed(systemd):
    assert Notifier(env(systemd, WATCHDOG_PID="1")).watchdog_s is None
    assert Notifier(env(systemd, WATCHDOG_USEC="0")).watchdog_s is None


def test_abstract_socket_names_are_understood():
    name = f"sortline-test-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as peer:
        peer.bind("\0" + name)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.send("READY=1")
        assert peer.recv(100) == b"READY=1"
        notifier.close()


async def test_a_socket_that_is_gone_is_logged_once_and_never_raises(tmp_path, caplog):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    assert notifier.send("WATCHDOG=1") is False
    assert notifier.send("WATCHDOG=1") is False
    assert len([r for r in caplog.records if "cannot notify systemd" in r.getMessage()]) == 1
