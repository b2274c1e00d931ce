"""systemd's notify protocol (sd_notify(3)): READY=1 once the controller runs, WATCHDOG=1 from its loop.

With `Type=notify` and `WatchdogSec=` in the unit (deploy/sortline.service), systemd counts the
controller as started only once it is ready, and kills and restarts it when no WATCHDOG=1 came
within WatchdogSec. The keep-alive is sent by a task on the controller's own event loop: a loop
that hangs decides no parcel, and then the keep-alives stop with it. The protocol is one datagram
per message on the unix socket named by $NOTIFY_SOCKET; outside systemd nothing is sent.
"""
import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

log = logging.getLogger("sortline.systemd")

READY_POLL_S = 0.1
STATUS_MAX_CHARS = 200


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # "@name" is a socket in the abstract namespace.
        self.address: str | None = ("\0" + address[1:] if address.startswith("@") else address) or None
        self.watchdog_s = _watchdog_period_s(env)
        self._sock: socket.socket | None = None
        self._failed_once = False

    @property
    def active(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """One notify message ("READY=1", "STATUS=..."); never blocks, never raises."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as exc:
            if not self._failed_once:
                self._failed_once = True
                log.warning("cannot notify systemd at %s: %s; if the unit has WatchdogSec=, systemd will restart "
                            "the controller", self.address.replace("\0", "@"), exc)
            return False

    async def run(self, ready: Callable[[], bool], status: Callable[[], str | None] | None = None) -> None:
        """READY=1 as soon as `ready()`, WATCHDOG=1 every half watchdog period, STATUS= when it changes.
        Runs until cancelled; sends STOPPING=1 then."""
        if self.address is None:
            return
        pause_s = min(READY_POLL_S, self.watchdog_s / 2) if self.watchdog_s else READY_POLL_S
        loop = asyncio.get_running_loop()
        is_ready, last_status, next_beat_mono = False, None, loop.time()
        try:
            while True:
                if not is_ready and ready():
                    is_ready = self.send("READY=1")
                    if is_ready:
                        log.info("told systemd the controller is ready")
                text = status() if status else None
                if text is not None and text != last_status:
                    self.send("STATUS=" + text[:STATUS_MAX_CHARS].replace("\n", " "))
                    last_status = text
                if self.watchdog_s and loop.time() >= next_beat_mono:
                    self.send("WATCHDOG=1")
                    next_beat_mono = loop.time() + self.watchdog_s / 2
                await asyncio.sleep(pause_s)
        finally:
            self.send("STOPPING=1")
            self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_period_s(env: Mapping[str, str]) -> float | None:
    """WatchdogSec= as systemd passes it, when it is meant for this process."""
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1e6
