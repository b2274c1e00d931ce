"""A simulated smart code reader beside the simulated PLC, speaking the line config's [reader] format.

It is triggered by the same photo-eye as the PLC's scan (it sees each parcel the PLC tracks as it
passes) and, after a decode time of its own, sends one result: the label's waybill barcode, or
the no-read marker for a parcel lying label-down and for a share of its own misses. Its trigger
id is the PLC's tracking number, or a count of its own (for [reader] match = "time"). It listens
when the controller connects ([reader] mode = "client") and connects when the controller listens
("server"), and reconnects when the connection drops.

Faults for tests: `silent_after` parcels it stops sending while keeping the connection (a reader
whose trigger wire came loose); `garbage_every` results it sends a line of noise too.
"""
from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from edge.code_reader_format import frame_bytes

log = logging.getLogger("sortline.sim")

POLL_S = 0.005                   # how often the photo-eye is looked at: the PLC cycle; results go out at
                                 # scan time + decode time all the same (the decode takes 10 ms and more)


@dataclass(frozen=True)
class ReaderSpec:
    no_read_share: float = 0.05          # labels it fails to read, beside those lying label-down
    delay_ms: tuple[float, float] = (10.0, 35.0)   # decode time after the trigger, drawn evenly
    ids: str = "tracking"                # "tracking": the PLC's tracking number; "own": a count of its own
    silent_after: int | None = None      # parcels after which it sends nothing more
    garbage_every: int = 0               # every n-th result is followed by a line of noise (0: never)
    seed: int = 1


class SimCodeReader:
    def __init__(self, model, reader: dict, spec: ReaderSpec = ReaderSpec(), host: str | None = None,
                 port: int | None = None):
        if reader["mode"] == "off":
            raise ValueError('the line config has [reader] mode = "off": set "client" or "server" to simulate a reader')
        if reader["pattern"]:
            raise ValueError("the simulated code reader writes results by [reader] template; this line config gives "
                             "a pattern: give a template for the simulated reader's line config")
        if spec.ids not in ("tracking", "own"):
            raise ValueError(f"reader ids {spec.ids!r}: use tracking or own")
        self._device(model, reader, host, port)
        self.prefix = reader["prefix"]
        self.template = reader["template"]
        self.separator = reader["code_separator"] or ";"
        self.no_read = reader["no_read"]
        self.spec = spec
        self._rng = random.Random(spec.seed)
        self._own_id = self._rng.randint(1, 100_000)
        self.counts = {"triggers": 0, "sent": 0, "no_reads": 0, "withheld": 0, "unsent": 0, "garbage": 0}

    def _device(self, model, device: dict, host: str | None, port: int | None) -> None:
        """The connection and the photo-eye, from the device's section of the line config ([reader],
        or [scale] for the simulated scale)."""
        self.model = model
        self.listens = device["mode"] == "client"       # the controller is the client: this device serves
        self.host = host or device["host"]
        self.port = port or device["port"]
        self.framing = device["framing"]
        self._next_tracking: int | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        if self.listens:
            self._server = await asyncio.start_server(self._connected, self.host, self.port)
            log.info("simulated code reader listening on %s:%d", self.host, self.port)
        else:
            self._spawn(self._connect())
        self._spawn(self._watch())

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), 2.0)

    def summary(self) -> dict:
        return dict(self.counts)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- connections -----------------------------------------------------------------------------
    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while await reader.read(4096):        # a reader ignores what a host sends it here
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _connect(self) -> None:
        while True:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 2.0)
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.2)
                continue
            log.info("simulated code reader connected to %s:%d", self.host, self.port)
            await self._connected(reader, writer)

    # -- the photo-eye -----------------------------------------------------------------------------
    async def _watch(self) -> None:
        model = self.model
        while True:
            nxt = model.next_tracking
            if self._next_tracking is None or nxt < self._next_tracking:     # the start, or a PLC restart
                self._next_tracking = nxt
            while self._next_tracking != nxt:
                parcel = model.parcels.get(self._next_tracking)
                self._next_tracking = (self._next_tracking + 1) & 0xFFFFFFFF or 1
                if parcel is not None:
                    self._triggered(parcel)
            await asyncio.sleep(POLL_S)

    def _triggered(self, parcel) -> None:
        self.counts["triggers"] += 1
        self._own_id += 1
        trigger = parcel.tracking if self.spec.ids == "tracking" else self._own_id
        if self.spec.silent_after is not None and self.counts["triggers"] > self.spec.silent_after:
            self.counts["withheld"] += 1
            return
        label = getattr(getattr(parcel, "truth", None), "label", None)
        truth = getattr(label, "truth", None)
        codes: tuple[str, ...] = ()
        if truth is not None and self._rng.random() >= self.spec.no_read_share:
            codes = (truth.waybill,)
        lo, hi = self.spec.delay_ms
        delay_s = self._rng.uniform(lo, hi) / 1000
        loop = asyncio.get_running_loop()
        send_at = parcel.scan_time_s + delay_s
        loop.call_at(send_at, self._send, trigger, codes)

    def result_text(self, trigger: int, codes: tuple[str, ...]) -> str:
        text = self.template.replace("{trigger}", str(trigger))
        text = text.replace("{codes}", self.separator.join(codes) if codes else self.no_read)
        return self.prefix + text.replace("{skip}", "0")

    def _send(self, trigger: int, codes: tuple[str, ...]) -> None:
        frame = frame_bytes(self.result_text(trigger, codes), self.framing)
        n = self.counts["sent"] + 1
        if self.spec.garbage_every and n % self.spec.garbage_every == 0:
            frame += frame_bytes("\x7f\x7fgarbage", self.framing)
            self.counts["garbage"] += 1
        if not self._writers:
            self.counts["unsent"] += 1
            return
        for writer in list(self._writers):
            writer.write(frame)
        self.counts["sent"] += 1
        if not codes:
            self.counts["no_reads"] += 1


# -- `sortline sim --code-reader` ------------------------------------------------------------------
def add_arguments(p) -> None:
    p.add_argument("--code-reader", action="store_true",
                   help="simulate the line config's [reader] too: it serves when the controller connects "
                        "(mode \"client\") and connects when the controller listens (\"server\")")
    p.add_argument("--reader-port", type=int, default=None, help="override [reader] port")
    p.add_argument("--reader-no-read-share", type=float, default=0.05,
                   help="share of labels the code reader fails to read (label-down parcels are no reads anyway)")
    p.add_argument("--reader-delay-ms", default="10:35", metavar="MIN:MAX",
                   help="the reader's decode time after the trigger, drawn evenly between MIN and MAX")
    p.add_argument("--reader-ids", choices=("tracking", "own"), default="tracking",
                   help="trigger ids: the PLC's tracking numbers, or a count of the reader's own")
    p.add_argument("--reader-silent-after", type=int, default=None, metavar="N",
                   help="the reader sends nothing after N parcels, its connection stays up (a loose trigger wire)")
    p.add_argument("--reader-garbage-every", type=int, default=0, metavar="N",
                   help="every N-th result is followed by a line of noise")


def spec_from_args(args, parser, config) -> ReaderSpec | None:
    if not args.code_reader:
        return None
    if config["reader"]["mode"] == "off":
        parser.error(f'--code-reader simulates the line config\'s [reader], and {config.path} has none (mode = "off"): '
                     f'set [reader] mode = "client" or "server"')
    try:
        lo, hi = (float(x) for x in args.reader_delay_ms.split(":"))
    except ValueError:
        parser.error(f"--reader-delay-ms {args.reader_delay_ms!r}: write MIN:MAX in milliseconds, e.g. 10:35")
    if not 0 <= lo <= hi <= 10_000:
        parser.error(f"--reader-delay-ms {args.reader_delay_ms}: 0 <= MIN <= MAX <= 10000")
    if not 0.0 <= args.reader_no_read_share <= 1.0:
        parser.error(f"--reader-no-read-share must be a share from 0 to 1, got {args.reader_no_read_share:g}")
    return ReaderSpec(no_read_share=args.reader_no_read_share, delay_ms=(lo, hi), ids=args.reader_ids,
                      silent_after=args.reader_silent_after, garbage_every=max(0, args.reader_garbage_every),
                      seed=args.seed)


async def started(config, model, spec: ReaderSpec, port: int | None = None) -> SimCodeReader:
    reader = SimCodeReader(model, config["reader"], spec, port=port)
    await reader.start()
    return reader
