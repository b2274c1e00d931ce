"""Label reading in processes of their own beside the controller's event loop.

Reading a label is a few milliseconds of native work (JPEG decoding, zxing, OpenCV,
onnxruntime) stitched together by Python. In threads of the controller's process those Python
steps wait for the interpreter lock, which the event loop takes every couple of milliseconds to
poll the PLC: the same reads took several times longer at the 99th percentile there than alone.
A reader process shares no lock with the loop, and a crash in native code costs one parcel's
read, not the controller; the reader is started again.

One request at a time per reader, over a pipe:

    controller -> reader   ("read", id, path, budget_ms, ask)  ("answer", id, bool)
                           ("couriers", table)                  ("stop",)
    reader -> controller   ("ready", usable, message)  ("ask", id, LabelRead)  ("done", id, LabelRead)

With `ask`, a reader that has read a waybill barcode asks whether the printed text is still
needed: the pre-advice that decides it lives in the controller alone. It waits for the answer
no longer than its budget.

An "ask" answered "not needed" is the read: the parcel goes on at once, and the "done" that
follows only frees the reader.

Hedged reads (`hedge=True`): when another reader is idle as a parcel's read starts, it reads the
same image too, and the first answer is the parcel's. On a PC whose cores are taken away now and
then (a virtual machine's host, a burst of other work on one core), the read on the other core
still answers in time. Only a reader idle at that moment takes a hedge, and only while parcels
come at least HEDGE_GAP times a read's time apart: at higher rates a parcel would come while both
readers read one image, and wait.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import time
from dataclasses import dataclass, replace

from drivers.timed_awaits import bounded
from vision.image_header import limit_opencv_decoding

log = logging.getLogger("sortline.edge")

START_TIMEOUT_S = 60.0        # a cold industrial PC loads OpenCV and onnxruntime from disk
STOP_TIMEOUT_S = 3.0
HUNG_AFTER_S = 5.0            # budgets are tens of milliseconds: a read this long is stuck in native code
RESTART_PAUSE_S = 1.0
HEDGE_GAP = 3.0               # hedge only while parcels come this many read times apart, or more
EXIT_WAIT_S = 0.02
UNDECODABLE = "the camera's image file cannot be decoded"    # how a no read caused by the file begins


def default_size() -> int:
    """One reader per core, at most four: reads of different parcels run side by side."""
    return max(1, min(4, os.cpu_count() or 1))


# -- the reader process -------------------------------------------------------------------------
def use_plan_rules(table, routing_shapes) -> None:
    """Numbers in the plan's courier formats are waybills too (vision.waybill.use_plan_formats),
    and routing codes count only in the shapes of the plan's own (vision.routing_code.use_routing_shapes)."""
    from fastpath.waybill import canonical
    from vision.routing_code import use_routing_shapes
    from vision.waybill import use_plan_formats
    use_routing_shapes(routing_shapes)
    if table is None:
        use_plan_formats(None)
        return

    def courier_of(text):
        index = table.detect(canonical(text))
        return table.names[index - 1] if index else None
    use_plan_formats(courier_of)


def read_file(path, budget_ms: float, text_needed=None):
    """Decode the camera's image file and read it within the budget, never raising.

    A file that cannot give an image is a no read starting with UNDECODABLE, which counts
    towards the camera's health (edge.camera_health): not a regular file, too big, a header that
    claims more pixels than any camera sends, damaged.
    """
    import cv2

    from vision.image_whole import completeness
    from vision.image_header import read_header
    from vision.image_input import BadImage, decode, read_image_file
    from vision.pipeline import read_label
    from vision.result import no_read
    t0 = time.perf_counter()
    try:
        data = read_image_file(path)
        # The reader works on gray; decoding less is faster. EXIF orientation is applied, as imread does.
        img = decode(data, cv2.IMREAD_GRAYSCALE)
    except BadImage as exc:
        return no_read(f"{UNDECODABLE}: {exc}", (time.perf_counter() - t0) * 1000)
    spent_ms = (time.perf_counter() - t0) * 1000
    read = read_label(img, budget_ms=max(1.0, budget_ms - spent_ms), text_needed=text_needed)
    # An upload still unfinished when the camera's wait ended is read as it is; a no read says so.
    missing = completeness(data, read_header(data).suffix)
    if read.no_read_reason and missing:
        read = replace(read, no_read_reason=f"{read.no_read_reason} (the image file was incomplete: {missing})")
    return read


def serve(conn, couriers, routing_shapes=None) -> None:
    """A reader process: load the readers once, then answer read requests until told to stop."""
    import gc
    import signal

    limit_opencv_decoding()       # inherited from the controller already, unless started otherwise
    import cv2

    import vision
    # Ctrl-C on the console reaches the whole process group; the controller stops its readers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)          # parcels run side by side in processes, not inside one read
    use_plan_rules(couriers, routing_shapes)
    usable, message = vision.warm_up()
    gc.collect()
    gc.freeze()                   # what is loaded lives all day: keep it out of full collections
    later: list = []              # messages that arrived while waiting for an answer
    try:
        conn.send(("ready", usable, message))
        while True:
            msg = later.pop(0) if later else conn.recv()
            if msg[0] == "stop":
                return
            if msg[0] == "plan":
                use_plan_rules(msg[1], msg[2])
            elif msg[0] == "read":
                _, rid, path, budget_ms, ask = msg
                asker = _asker(conn, rid, time.monotonic() + budget_ms / 1000, later) if ask else None
                conn.send(("done", rid, read_file(path, budget_ms, asker)))
            # an "answer" to a question already given up on is dropped
    except (EOFError, OSError):
        return                    # the controller is gone (stopped, or killed): so is its reader


def _asker(conn, rid: int, until_mono: float, later: list):
    def text_needed(read) -> bool:
        conn.send(("ask", rid, read))
        while conn.poll(max(0.0, until_mono - time.monotonic())):
            msg = conn.recv()
            if msg[0] == "answer":
                if msg[1] == rid:
                    return bool(msg[2])
            else:
                later.append(msg)
        return False              # no answer within the budget: what the barcode gave is the answer
    return text_needed


# -- the controller's side ----------------------------------------------------------------------
@dataclass(eq=False)
class _Reader:
    index: int
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    alive: bool = True
    ready: bool = False
    request: int = 0              # the request in progress; 0 when idle
    future: asyncio.Future | None = None
    busy_since_mono: float = 0.0


class ReaderPool:
    """Reader processes and the requests sent to them, all on the event loop's thread.

    `text_needed(read) -> bool`, when given, answers a reader that has read a waybill barcode:
    False means the barcode is enough and the printed text is not read.
    """

    def __init__(self, size: int, couriers=None, text_needed=None, routing_shapes=None, hedge: bool = False):
        self.size = size
        self.hedge = hedge
        self.hedged = 0           # reads that a second, idle reader did too
        self._read_s: float | None = None       # a read's time, smoothed
        self._last_start_mono = 0.0
        self._couriers = couriers
        self._routing_shapes = routing_shapes
        self._text_needed = text_needed
        self._readers: list[_Reader] = []
        self._idle: asyncio.LifoQueue = asyncio.LifoQueue()      # made anew on the loop by start()
        self._ids = itertools.count(1)
        self._ctx = multiprocessing.get_context("spawn")
        self._stopping = False
        self._restarts: set[asyncio.Task] = set()
        self.model_status: tuple[bool, str] = (False, "label readers not started")
        self.restarted = 0

    @property
    def running(self) -> int:
        return sum(1 for r in self._readers if r.alive and r.ready)

    async def start(self, timeout_s: float = START_TIMEOUT_S) -> tuple[bool, str]:
        """Start every reader and wait until each has loaded; returns the text model's status."""
        # Last in, first out: at a steady rate one reader does the work with warm caches; the
        # others take the bursts.
        self._idle = asyncio.LifoQueue()
        # OpenCV's pixel limit, behind the readers' own header check: the readers inherit it.
        limit_opencv_decoding()
        started = await asyncio.gather(*(self._spawn(i, timeout_s) for i in range(self.size)),
                                       return_exceptions=True)
        failed = [exc for exc in started if isinstance(exc, BaseException)]
        for exc in failed:
            if not isinstance(exc, Exception):
                raise exc
            log.error("a label reader did not start: %s", exc)
        if len(failed) == self.size:
            self.model_status = (False, "no label reader started: every parcel goes to the no-read chute; "
                                        "see the errors above")
        return self.model_status

    async def _spawn(self, index: int, timeout_s: float) -> _Reader:
        loop = asyncio.get_running_loop()
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=serve, args=(child, self._couriers, self._routing_shapes),
                                    name=f"sortline-reader-{index}", daemon=True)
        process.start()
        child.close()
        reader = _Reader(index, process, parent)
        reader.future = loop.create_future()      # resolved by its "ready"
        self._readers.append(reader)
        loop.add_reader(parent.fileno(), self._on_readable, reader)
        try:
            await bounded(asyncio.shield(reader.future), timeout_s)
        except asyncio.TimeoutError:
            reader.future.cancel()
            process.kill()
            raise RuntimeError(f"reader {index} did not load within {timeout_s:g} s (a very slow disk or "
                               f"too little memory); it is killed") from None
        except ConnectionError as exc:
            raise RuntimeError(f"reader {index} stopped while loading ({exc}); run "
                               f"'sortline read-label IMAGE' on the console to see why") from None
        return reader

    def use_plan(self, couriers, routing_shapes=None) -> None:
        """A new plan's courier formats and routing code shapes, for every reader (applied
        between two reads)."""
        self._couriers, self._routing_shapes = couriers, routing_shapes
        for reader in self._readers:
            if reader.alive:
                self._send(reader, ("plan", couriers, routing_shapes))

    async def read(self, path, budget_ms: float, until_mono: float, grace_s: float = 0.05):
        """Read one image within `budget_ms`, waiting for a free reader no later than `until_mono`.

        The reader stops itself at its budget; on a busy machine it may get the CPU late, and its
        answer is still taken until `until_mono` (or `grace_s` after the budget, if later).
        """
        from vision.result import no_read
        if not self.running:
            return no_read("no label reader is running (see the log for why)")
        while True:
            try:
                reader = await bounded(self._idle.get(), max(0.0, until_mono - time.monotonic()))
            except asyncio.TimeoutError:
                return no_read("label readers busy until the deadline (vision stage overloaded)")
            if reader.alive:
                break                                  # a reader that died while idle is left behind
        now = time.monotonic()
        budget_s = max(0.0, min(budget_ms / 1000, until_mono - now))
        future = asyncio.get_running_loop().create_future()    # the first answer of either reader
        self._start(reader, path, budget_s, future, now)
        twin = self._idle_now() if self._hedging(now) else None
        if twin is not None:
            self._start(twin, path, budget_s, future, now)
            self.hedged += 1
        self._last_start_mono = now
        try:
            read = await bounded(asyncio.shield(future), max(budget_s + grace_s, until_mono - now))
            spent = time.monotonic() - now
            self._read_s = spent if self._read_s is None else 0.9 * self._read_s + 0.1 * spent
            return read
        except asyncio.TimeoutError:
            # The reader stays busy until it answers; its late answer is dropped.
            return no_read("label reading overran its budget and the parcel's deadline (vision stage)")

    def _start(self, reader: _Reader, path, budget_s: float, future: asyncio.Future, now: float) -> None:
        reader.request, reader.future, reader.busy_since_mono = next(self._ids), future, now
        self._send(reader, ("read", reader.request, str(path), budget_s * 1000, self._text_needed is not None))

    def _hedging(self, now: float) -> bool:
        return self.hedge and (self._read_s is None or now - self._last_start_mono >= HEDGE_GAP * self._read_s)

    def _idle_now(self) -> _Reader | None:
        while not self._idle.empty():
            reader = self._idle.get_nowait()
            if reader.alive:
                return reader
        return None

    def _twin_reading(self, reader: _Reader) -> bool:
        """Another live reader reads the same image: its answer is still to come."""
        return any(other is not reader and other.alive and other.future is reader.future for other in self._readers)

    def check_hung(self) -> None:
        """Kill a reader stuck in one read far beyond any budget; it is started again."""
        now = time.monotonic()
        for reader in self._readers:
            if reader.alive and reader.request and now - reader.busy_since_mono > HUNG_AFTER_S:
                log.error("label reader %d has been reading one image for %.0f s: killed, a new one is started",
                          reader.index, now - reader.busy_since_mono)
                reader.process.kill()

    async def stop(self) -> None:
        self._stopping = True
        for task in self._restarts:
            task.cancel()
        for reader in self._readers:
            if reader.alive:
                self._send(reader, ("stop",))
        end = time.monotonic() + STOP_TIMEOUT_S
        for reader in self._readers:
            while reader.process.is_alive() and time.monotonic() < end:
                await asyncio.sleep(0.02)
            if reader.process.is_alive():
                reader.process.kill()
            self._forget(reader)

    # -- messages ---------------------------------------------------------------------------
    def _send(self, reader: _Reader, msg) -> None:
        try:
            reader.conn.send(msg)
        except (OSError, ValueError):
            self._lost(reader)

    def _on_readable(self, reader: _Reader) -> None:
        try:
            while reader.alive and reader.conn.poll():
                self._handle(reader, reader.conn.recv())
        except (EOFError, OSError):
            self._lost(reader)

    def _handle(self, reader: _Reader, msg) -> None:
        kind = msg[0]
        if kind == "ask":
            try:
                needed = True if self._text_needed is None else bool(self._text_needed(msg[2]))
            except Exception:
                log.exception("deciding whether a label's text is needed failed; it is read")
                needed = True
            self._send(reader, ("answer", msg[1], needed))
            if not needed and reader.request == msg[1] and reader.future is not None and not reader.future.done():
                # What the barcode gave is the answer: the parcel is decided now, not after the
                # answer's round trip to the reader and its "done"; that only frees the reader.
                reader.future.set_result(msg[2])
        elif kind == "done":
            if reader.request == msg[1] and reader.future is not None and not reader.future.done():
                reader.future.set_result(msg[2])
            reader.request, reader.future = 0, None
            self._idle.put_nowait(reader)
        elif kind == "ready":
            reader.ready = True
            self.model_status = (bool(msg[1]), str(msg[2]))
            if reader.future is not None and not reader.future.done():
                reader.future.set_result(None)
            reader.future = None
            self._idle.put_nowait(reader)

    def _forget(self, reader: _Reader) -> None:
        if reader.alive:
            reader.alive = False
            asyncio.get_running_loop().remove_reader(reader.conn.fileno())
            reader.conn.close()

    def _lost(self, reader: _Reader) -> None:
        """The reader's process ended: answer its parcel, start another unless stopping."""
        from vision.result import no_read
        if not reader.alive:
            return
        self._forget(reader)
        # A killed or crashed reader is reaped at once; one that closed its pipe but hangs in its
        # exit must not hold the event loop (and every parcel on it) for long.
        reader.process.join(EXIT_WAIT_S)
        code = reader.process.exitcode if reader.process.exitcode is not None else "not known yet"
        if reader.future is not None and not reader.future.done() and not self._twin_reading(reader):
            if reader.ready:
                reader.future.set_result(no_read(f"label reader process ended (exit code {code}) while reading "
                                                 f"this image; a new one is started"))
            else:
                reader.future.set_exception(ConnectionError(f"exit code {code}"))
        self._readers.remove(reader)
        if self._stopping or not reader.ready:
            return                # one that ends while loading is reported by whoever started it
        log.error("label reader %d ended (exit code %s)%s; a new one is started", reader.index, code,
                  " while reading an image" if reader.request else "")
        task = asyncio.get_running_loop().create_task(self._restart(reader.index))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _restart(self, index: int) -> None:
        while not self._stopping:
            try:
                await self._spawn(index, START_TIMEOUT_S)
                self.restarted += 1
                return
            except RuntimeError as exc:
                log.error("label reader %d could not be started again: %s; retrying in %g s", index, exc,
                          RESTART_PAUSE_S)
                await asyncio.sleep(RESTART_PAUSE_S)
