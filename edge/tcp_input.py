"""A device that sends lines of text over TCP: the connection, its reconnects and its framing.

The smart code reader (edge/code_reader.py) and the scale (edge/scale.py) both send one frame per
parcel. mode = "client": the controller connects to the device's TCP server and reconnects after
a pause that doubles up to [section] reconnect_max_ms, as the PLC link does. mode = "server": the
controller listens and the device connects (a device that reconnects replaces its old connection).

Both devices' counts, snapshot and alarms are kept here: the link alarm for a device not connected
for LINK_ALARM_AFTER_S, and the input alarm for frames that could not be used. A subclass turns
frames into results (`_frames`), counts what could not be used (`_problem`), names the words of
its alarms, and adds its own checks each round (`_check`).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time

from drivers.timed_awaits import bounded

from .alarms import Alarms
from .code_reader_format import Framer, Problem

log = logging.getLogger("sortline.edge")

CONNECT_TIMEOUT_S = 2.0
RECONNECT_MIN_S = 0.1
CHUNK_BYTES = 16384              # read at a time: a flood is worked through in small slices of the loop
LOGGED_PER_KIND = 3              # problems of one kind logged one by one; then every 1000th
PROBLEM_WINDOW_S = 60.0          # the input alarm names the kinds of problem seen in the last minute
LINK_ALARM_AFTER_S = 2.0         # a reconnect within this goes unalarmed
WATCH_S = 0.2                    # how often the alarms are checked


class TcpInput:
    """The connection side; `name` says which device in the log and the alarms ("code reader", "scale")."""

    name = "device"
    section = "reader"               # its section of the line config, named in the framing's messages and
                                     # the link alarm's remedy ("check the reader's power ... [reader]")
    link_alarm = "device_link"       # the alarm key for a device not connected
    input_alarm = "device_input"     # the alarm key for input that could not be used
    frames_are = "frames"            # what it sends, in the input alarm ("results", "weighings")
    without_link = ""                # what parcels do while it is not connected, in the link alarm
    without_input = ""               # what becomes of parcels whose frames could not be used
    remedies: dict[str, str] = {}    # problem kind -> what to check

    def __init__(self, device: dict, alarms: Alarms | None = None):
        """`device`: its section of the line config (mode, host, port, framing, max_frame_bytes,
        reconnect_max_ms)."""
        self.mode = device["mode"]
        self.host, self.port = device["host"], device["port"]
        self.address = f"{self.host}:{self.port}"
        self.framing = device["framing"]
        self.max_frame_bytes = device["max_frame_bytes"]
        self.reconnect_max_s = device["reconnect_max_ms"] / 1000
        self.alarms = alarms or Alarms()
        self.counts: collections.Counter[str] = collections.Counter()
        self.connected = False
        self._down_since_mono: float | None = None
        self._down_why = "not connected yet"
        self._tasks: list[asyncio.Task] = []
        self._server: asyncio.AbstractServer | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._stopping = False
        self.problems: collections.Counter[str] = collections.Counter()
        self.last_problem: dict[str, str] = {}
        self._recent_problems: collections.deque = collections.deque()   # (mono, kind), the last minute
        self._alarmed_at = 0             # problems counted when the input alarm was last raised

    # -- what a subclass gives -------------------------------------------------------------------------
    def _frames(self, items: list) -> None:
        raise NotImplementedError

    def _check(self, now: float) -> None:
        """The device's own checks each round, before the link and input alarms (`now`: loop time)."""

    # -- input that could not be used ------------------------------------------------------------------
    def _problem(self, problem: Problem, count: bool = True) -> None:
        if count:
            self.problems[problem.kind] += 1
        n = self.problems[problem.kind]
        self.last_problem[problem.kind] = problem.detail
        self._recent_problems.append((time.monotonic(), problem.kind))
        if n <= LOGGED_PER_KIND or n % 1000 == 0:
            log.warning("%s at %s: %s (%d %s so far): %s", self.name, self.address, problem.detail, n,
                        problem.kind.replace("_", " "), self.remedies[problem.kind])

    def _input_alarm(self, now: float) -> None:
        while self._recent_problems and now - self._recent_problems[0][0] > PROBLEM_WINDOW_S:
            self._recent_problems.popleft()
        total = sum(self.problems.values())
        if not self._recent_problems or total == self._alarmed_at:
            return
        self._alarmed_at = total
        kinds = collections.Counter(kind for _, kind in self._recent_problems)
        worst = kinds.most_common(1)[0][0]
        # The cause names the kinds only, so that it is logged once, not at every new count.
        kinds_text = ", ".join(k.replace("_", " ") for k in sorted(kinds))
        self.alarms.raise_(self.input_alarm,
                           f"the {self.name} at {self.address} sent {self.frames_are} that could not be used in the "
                           f"last minute ({kinds_text}); {self.without_input}",
                           f"{self.remedies[worst]}; the first cases of each kind are in the controller's log",
                           hold_s=PROBLEM_WINDOW_S, level=logging.WARNING)

    # -- alarms -------------------------------------------------------------------------------------
    async def _watch(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(WATCH_S)

    def check(self) -> None:
        now = asyncio.get_running_loop().time()
        self._check(now)
        down_s = self.down_for_s(now)
        since = time.strftime("%H:%M:%S", time.localtime(time.time() - (down_s or 0.0)))
        self.alarms.set(self.link_alarm, (
            f"{self.name} at {self.address} not connected since {since} ({self._down_why}): {self.without_link}",
            f"check the {self.section}'s power and network cable, and that its TCP output (client or server, "
            f"address, port) matches [{self.section}] in the line config")
            if down_s is not None and down_s >= LINK_ALARM_AFTER_S else None)
        self._input_alarm(time.monotonic())

    def snapshot(self) -> dict:
        return {"address": self.address, "mode": self.mode, "connected": self.connected, **self.counts,
                "problems": dict(self.problems)}

    # -- life cycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        task_name = self.name.replace(" ", "-")
        self._down_since_mono = asyncio.get_running_loop().time()
        self._stopping = False
        self._tasks.append(asyncio.create_task(self._listen() if self.mode == "server" else self._client(),
                                               name=task_name))
        self._tasks.append(asyncio.create_task(self._watch(), name=f"{task_name}-watch"))

    async def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
        if self._writer is not None:
            self._writer.close()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        self._tasks.clear()
        if self._server is not None:
            try:
                await bounded(self._server.wait_closed(), 2.0)
            except TimeoutError:
                log.warning("%s: the listening port %s did not close within 2 s", self.name, self.address)
            self._server = None

    @property
    def listening(self) -> bool:
        """Server mode: the port is open for the device."""
        return self._server is not None

    def down_for_s(self, now_mono: float) -> float | None:
        """How long the device has been without a connection; None while connected."""
        return None if self._down_since_mono is None else now_mono - self._down_since_mono

    # -- connections ----------------------------------------------------------------------------------
    async def _client(self) -> None:
        pause_s = RECONNECT_MIN_S
        while not self._stopping:
            try:
                reader, writer = await bounded(asyncio.open_connection(self.host, self.port, limit=CHUNK_BYTES),
                                               CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as exc:
                self._down_why = f"cannot connect to {self.address}: {exc or 'no answer'}"
                await asyncio.sleep(pause_s)
                pause_s = min(pause_s * 2, self.reconnect_max_s)
                continue
            pause_s = RECONNECT_MIN_S
            await self._serve(reader, writer)

    async def _listen(self) -> None:
        """A port another program holds (or an address this PC does not have) is an alarm, tried
        again and again: the line sorts without the device meanwhile."""
        while self._server is None:
            try:
                self._server = await asyncio.start_server(self._accepted, self.host, self.port, limit=CHUNK_BYTES)
            except OSError as exc:
                self._down_why = f"cannot listen on {self.address}: {exc.strerror or exc}"
                await asyncio.sleep(self.reconnect_max_s)
                continue
            self._down_why = f"listening on {self.address}, the {self.name} has not connected"
            log.info("%s: listening on %s", self.name, self.address)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            log.warning("%s: a new connection from %s replaces the one before", self.name,
                        writer.get_extra_info("peername"))
            self._writer.close()
        await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # A device switched off leaves a half-open connection: keepalive finds it in seconds.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._writer = writer
        self.connected = True
        self._down_since_mono = None
        self.counts["connects"] += 1
        log.info("%s: connected (%s)", self.name, writer.get_extra_info("peername"))
        framer = Framer(self.framing, self.max_frame_bytes, self.section)
        why = f"the {self.name} closed the connection"
        try:
            while True:
                data = await reader.read(CHUNK_BYTES)
                if not data:
                    break
                self._frames(framer.feed(data))
                await asyncio.sleep(0)          # a flood must leave the loop to the parcels between chunks
        except (ConnectionError, OSError) as exc:
            why = f"connection lost: {exc}"
        finally:
            for problem in framer.end():
                self._problem(problem)
            if self._writer is writer:
                self._writer = None
                self.connected = False
                self._down_since_mono = asyncio.get_running_loop().time()
                self._down_why = why
            writer.close()
            if not self._stopping:
                log.warning("%s at %s: %s", self.name, self.address, why)
