"""The abstract PLC link the controller talks to.

A link delivers events (scan events, divert confirmations) into a queue exactly once, in order,
and carries assignments, chute commands and the controller heartbeat to the PLC. It heals itself:
the controller never reconnects, it only reads `status`. One supervisor task owns the protocol
client: it creates a new one for every connection (a client that failed once is never reused),
waits with a capped backoff between attempts, and closes it when the session fails.
"""
import abc
import asyncio
import importlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import regmap as rm
from .regmap import RegisterMap
from .rings import REUSE_AFTER_S, RingReader, valid_confirmation, valid_scan
from .timed_awaits import cancel_and_wait

log = logging.getLogger("sortline.link")

BACKENDS = {"modbus": "drivers.modbus:ModbusLink", "opcua": "drivers.opcua:OpcUaLink"}

FIRST_BACKOFF_S = 0.05
ANOMALY_LOG_EVERY_S = 5.0        # one log line per kind of anomaly per this period, with the count
PLC_HEARTBEAT_STALE_S = 1.0      # the PLC heartbeat changes every 100 ms
RECONNECT_POLL_S = 0.005         # an assignment waiting for the link looks this often


class LinkError(ConnectionError):
    """The PLC could not be reached or did not answer in time: the link reconnects on its own."""


class PlcRefused(LinkError):
    """The PLC answered but refused the request (Modbus exception, OPC UA Bad status)."""


class InterfaceMismatch(LinkError):
    """The peer answers but does not offer the documented interface where the config says."""


class OutsideWindow(PermissionError):
    """A write outside the controller's own register block / node set: never sent."""


@dataclass(frozen=True)
class ScanEvent:
    seq: int
    tracking: int
    encoder_counts: int
    received_s: float            # host monotonic time the link saw the event
    reused: bool = False         # the PLC gave this tracking number to an earlier parcel too


@dataclass(frozen=True)
class PlcContact:
    """A connection to the PLC began: where its numbering stands (`PlcLink.contact`, set before any
    event read on that connection is queued)."""
    boot: int
    scan_seq: int
    scan_ack: int
    received_s: float


@dataclass(frozen=True)
class Confirmation:
    seq: int
    tracking: int
    chute: int
    result: int                  # drivers.regmap.DivertResult value (untrusted: may be unknown)
    received_s: float


@dataclass(frozen=True)
class OpcUaSettings:
    path: str = ""                           # endpoint path after host:port, e.g. "/sorter/"
    namespace: str = "urn:sortline:plc"
    security: str = "none"                   # "none" or "sign-and-encrypt" (Basic256Sha256)
    certificate: str = ""                    # this controller's application certificate (DER or PEM)
    private_key: str = ""
    server_certificate: str = ""             # the PLC's certificate: the only server this link trusts
    auth: str = "anonymous"                  # "anonymous", "username" or "certificate"
    username: str = ""
    password: str = ""
    password_file: str = ""                  # a file holding the password, read at each connection


@dataclass(frozen=True)
class LinkSettings:
    host: str = "127.0.0.1"
    port: int = 502
    unit: int = 1
    poll_interval_s: float = 0.002
    timeout_s: float = 0.2
    heartbeat_interval_s: float = 0.1
    reconnect_max_s: float = 0.5
    # Longer than any parcel stays on the belt: a tracking number seen again after this long is a
    # new parcel (drivers/rings.py).
    reuse_after_s: float = REUSE_AFTER_S
    regmap: RegisterMap = field(default_factory=RegisterMap)
    opcua: OpcUaSettings = field(default_factory=OpcUaSettings)

    @property
    def connect_timeout_s(self) -> float:
        """Connecting and reading the start-up state takes several requests (and, for OPC UA, key exchange)."""
        return max(1.0, 5 * self.timeout_s)


@dataclass
class LinkStatus:
    address: str = ""
    connected: bool = False
    lost_since_wall: float | None = None     # wall-clock time (for people), None while connected
    last_error: str = ""
    plc_boot_id: int | None = None
    plc_alive: bool = False                  # the PLC heartbeat changed recently
    anomalies: dict = field(default_factory=dict)
    _logged: dict = field(default_factory=dict, repr=False)

    def count(self, what: str, n: int = 1) -> None:
        self.anomalies[what] = self.anomalies.get(what, 0) + n

    def anomaly(self, what: str, message: str, n: int = 1, level: int = logging.WARNING) -> None:
        """Count an anomaly and log it; a flood of one kind is summarised every few seconds."""
        self.count(what, n)
        now = time.monotonic()
        last_s, quiet = self._logged.get(what, (None, 0))
        if last_s is not None and now - last_s < ANOMALY_LOG_EVERY_S:
            self._logged[what] = (last_s, quiet + 1)
            return
        more = f"; {quiet} more like this since the last report" if quiet else ""
        log.log(level, "%s [%s: %d so far%s]", message, what, self.anomalies[what], more)
        self._logged[what] = (now, 0)

    @property
    def message(self) -> str | None:
        """What the line screen shows while the link is down, with what to check."""
        if self.connected:
            return None
        since = time.strftime("%H:%M:%S", time.localtime(self.lost_since_wall)) if self.lost_since_wall \
            else "start-up"
        return (f"PLC link lost since {since}: {self.last_error or 'no answer yet'}; check the cable and the PLC "
                f"at {self.address}; sorting resumes on its own when it answers")


class PlcLink(abc.ABC):
    def __init__(self, settings: LinkSettings):
        self.settings = settings
        self.events: asyncio.Queue = asyncio.Queue()
        self.status = LinkStatus(address=self.address)
        self.scans = RingReader("scan", self.status, valid_scan, reuse_after_s=settings.reuse_after_s,
                                on_renumbered=self._tracking_reused)
        self.confirms = RingReader("confirm", self.status, valid_confirmation, reuse_after_s=settings.reuse_after_s)
        self._reused: set[int] = set()           # tracking numbers just taken again for new parcels
        self._contact_ring: list[int] = []       # the assignment ring as the PLC held it at connection
        self.contact: PlcContact | None = None
        self.chute_full: set[int] = set()
        self.chute_fault: set[int] = set()
        self.line_state: int | None = None
        self._boot_id: int | None = None
        self._aseq = 0
        self._heartbeat = 0
        self._beating = True
        self._plc_heartbeat: tuple[int, float] | None = None
        self._disabled: set[int] | None = None
        self._tasks: list[asyncio.Task] = []
        self._session: asyncio.Task | None = None
        self._failure: Exception | None = None
        self._generation = 0                     # one per connection: late failures of an old one are ignored

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    # -- what a backend provides ----------------------------------------------------------------
    @abc.abstractmethod
    async def _open(self) -> None:
        """Create a new client, connect, read the start-up state and hand it to `_first_contact`."""

    @abc.abstractmethod
    async def _serve(self) -> None:
        """Deliver events until the connection fails (raise LinkError)."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Drop the client; bounded, never raises."""

    @abc.abstractmethod
    async def _send_heartbeat(self, heartbeat: int, scan_ack: int, confirm_ack: int) -> None: ...

    @abc.abstractmethod
    async def _send_assignment(self, slot: int, aseq: int, tracking: int, chute: int, reason: int) -> None: ...

    @abc.abstractmethod
    async def _send_disabled(self, chutes: set[int]) -> None: ...

    # -- life cycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin connecting, receiving and heart-beating in the background; returns at once."""
        name = type(self).__name__
        self._tasks = [asyncio.create_task(self._supervise(), name=f"{name}-supervisor"),
                       asyncio.create_task(self._heartbeat_forever(), name=f"{name}-heartbeat")]

    def hold_heartbeat(self, held: bool) -> None:
        """While held, the heartbeat stands still but still carries the acknowledgements.

        The PLC then treats the controller as absent and sorts parcels to the end chute on its
        own, while the rings are read: for a controller that is connected but cannot decide yet
        (its label readers are still loading).
        """
        self._beating = not held

    async def stop(self) -> None:
        """Stop all background work and close the connection."""
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        await self._close()
        self.status.connected = False

    async def wait_connected(self, timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.status.connected:
            if asyncio.get_running_loop().time() > deadline:
                raise ConnectionError(f"PLC at {self.address} not reachable within {timeout_s:.1f} s: "
                                      f"{self.status.last_error or 'no answer'}; check the address and cable")
            await asyncio.sleep(0.02)

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        backoff_s = FIRST_BACKOFF_S
        while True:
            started_s = loop.time()
            try:
                try:
                    # Each step has its own bound; this one only keeps a slow sequence of them finite.
                    async with asyncio.timeout(2 * self.settings.connect_timeout_s):
                        await self._open()
                        if self._disabled is not None:      # a restarted PLC may have forgotten them
                            await self._send_disabled(self._disabled)
                except TimeoutError:
                    self.status.anomaly("no_answer", f"PLC at {self.address} did not complete the start-up "
                                        f"exchange within {2 * self.settings.connect_timeout_s:.1f} s")
                    raise LinkError(f"no complete start-up within {2 * self.settings.connect_timeout_s:.1f} s") \
                        from None
                self._generation += 1
                self._link_up()
                self._failure = None
                self._session = asyncio.create_task(self._serve(), name=f"{type(self).__name__}-session")
                await self._wait_session()
            except (ConnectionError, OSError, TimeoutError) as exc:
                self._link_down(exc)
            except Exception as exc:         # a defect must not stop the line's link for good
                log.exception("unexpected error in the PLC link to %s; reconnecting", self.address)
                self.status.count("internal_error")
                self._link_down(exc)
            finally:
                if self._session is not None:
                    self._session.cancel()
                    await asyncio.gather(self._session, return_exceptions=True)
                    self._session = None
                await self._close()
            if loop.time() - started_s > self.settings.reconnect_max_s:
                backoff_s = FIRST_BACKOFF_S          # the link worked a while: retry at once
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, self.settings.reconnect_max_s)

    async def _wait_session(self) -> None:
        session, me = self._session, asyncio.current_task()
        assert session is not None and me is not None          # started by the supervisor task itself
        try:
            await session
        except asyncio.CancelledError:
            if self._failure is None or me.cancelling():
                raise
        if self._failure is not None:
            raise self._failure
        raise LinkError("the session ended without an error")

    def _fail(self, exc: Exception, generation: int) -> None:
        """A request outside the session task failed: end the session so that a new client takes over
        (unless the request went out on a connection that has already been replaced)."""
        if generation != self._generation:
            return
        if self._session is not None and not self._session.done() and self._failure is None:
            self._failure = exc
            self._session.cancel()

    def _link_up(self) -> None:
        self.status.connected = True
        self.status.lost_since_wall = None
        self.status.last_error = ""
        # Where the PLC just connected stands: after a PLC restart the scan reader still holds the
        # previous boot's last number until it takes the new boot's first events.
        contact = self.contact
        log.info("PLC link up: %s, boot id %s, scan seq %s", self.address,
                 contact.boot if contact else self._boot_id, contact.scan_seq if contact else "unknown")

    def _link_down(self, exc: Exception) -> None:
        text = str(exc) or type(exc).__name__
        if self.status.connected:
            self.status.lost_since_wall = time.time()
            self.status.count("link_lost")
            log.error("PLC link lost: %s; check the cable and the PLC at %s; sorting resumes on its own "
                      "when it answers again", text, self.address)
        elif self.status.lost_since_wall is None:
            self.status.lost_since_wall = time.time()
            log.error("PLC at %s not reachable: %s; check the address in [plc] and the cable", self.address, text)
        elif text != self.status.last_error:
            log.error("PLC at %s still unreachable: %s", self.address, text)
        self.status.connected = False
        self.status.last_error = text

    # -- what the PLC says --------------------------------------------------------------------------
    def _first_contact(self, boot: int, scan_seq: int, scan_ack: int, confirm_seq: int, confirm_ack: int,
                       taken: int, ring_aseqs: list[int]) -> None:
        """The start-up state: where to continue reading, and which assignment number comes next."""
        if not self.scans.started:
            self.scans.start(boot, scan_seq, scan_ack)
            self.confirms.start(boot, confirm_seq, confirm_ack)
            self._boot_id = boot
        # After a controller restart, continue above every number the PLC may still hold.
        self._aseq = max(self._aseq, taken, *ring_aseqs)
        self._contact_ring = list(ring_aseqs)
        self._boot_seen(boot)
        self.contact = PlcContact(boot, scan_seq, scan_ack, time.monotonic())

    def _boot_seen(self, boot: int) -> None:
        if boot != self._boot_id:
            self.status.anomaly("plc_restart", f"PLC restarted (boot id {self._boot_id} -> {boot}): sequence "
                                f"numbers start again; parcels on the belt at the restart are the PLC's to report")
            self._boot_id = boot
        self.status.plc_boot_id = boot

    def _plc_heartbeat_seen(self, value: int, now_s: float) -> None:
        if self._plc_heartbeat is None or self._plc_heartbeat[0] != value:
            self._plc_heartbeat = (value, now_s)
            self.status.plc_alive = True
            return
        if self.status.plc_alive and now_s - self._plc_heartbeat[1] > PLC_HEARTBEAT_STALE_S:
            self.status.plc_alive = False
            self.status.anomaly("plc_heartbeat_stale",
                                f"PLC heartbeat stuck at {value} for {now_s - self._plc_heartbeat[1]:.1f} s: the PLC "
                                f"program may be stopped; check the PLC at {self.address}", level=logging.ERROR)

    def _take_scans(self, boot: int, newest: int, ring: Sequence[tuple[int, ...]], now_s: float) -> None:
        self._boot_seen(boot)
        for seq, tracking, encoder in self.scans.take(boot, newest, ring, now_s):
            reused = tracking in self._reused
            self._reused.discard(tracking)
            self.events.put_nowait(ScanEvent(seq, tracking, encoder, now_s, reused))

    def _tracking_reused(self, boot: int, tracking: int) -> None:
        """The scan ring took a tracking number again for a new parcel: its confirmation is new too."""
        self._reused.add(tracking)
        self.confirms.forget(tracking)

    def _take_confirmations(self, boot: int, newest: int, ring: Sequence[tuple[int, ...]], now_s: float) -> None:
        self._boot_seen(boot)
        for seq, tracking, chute, result in self.confirms.take(boot, newest, ring, now_s):
            self.events.put_nowait(Confirmation(seq, tracking, chute, result, now_s))

    # -- commands --------------------------------------------------------------------------------------
    async def _heartbeat_forever(self) -> None:
        """Beat while connected; keep running through outages so that beats resume with the link."""
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            if not self.status.connected:
                continue
            if self._beating:
                self._heartbeat = (self._heartbeat + 1) & 0xFFFF
            generation = self._generation
            try:
                await self._send_heartbeat(self._heartbeat, self.scans.last, self.confirms.last)
            except PlcRefused as exc:
                self.status.anomaly("heartbeat_refused", f"PLC refused the controller heartbeat: {exc}",
                                    level=logging.ERROR)
            except (LinkError, OSError, TimeoutError) as exc:
                self._fail(LinkError(f"heartbeat not delivered: {exc}"), generation)

    async def assign(self, tracking: int, chute: int, reason: int, until_mono: float | None = None) -> None:
        """Send one assignment; raises ConnectionError if the PLC could not be reached or refused it.

        With `until_mono` (the parcel's decision point, loop time) an assignment that did not get
        through is not given up while the parcel can still take it: the link waits for its next
        connection and writes the same slot with the same aseq again, which the PLC does not take
        twice (a slot rewritten with the same aseq is not news). If the PLC's copy of the ring
        already holds that aseq, the first write did arrive (only its answer was lost): nothing
        is written again and the assignment counts as delivered.
        """
        if not 0 < tracking <= 0xFFFFFFFF:
            raise ValueError(f"tracking number {tracking} is outside 1..{0xFFFFFFFF}")
        if not 1 <= chute <= rm.MAX_CHUTES or not 0 <= reason <= 0xFFFF:
            raise ValueError(f"assignment of chute {chute} reason {reason}: chutes are 1..{rm.MAX_CHUTES}, "
                             f"reasons 0..65535")
        if not self.status.connected and not await self._reconnected(None, until_mono):
            raise LinkError(self.status.message)
        self._aseq = self._aseq % 0xFFFFFFFF + 1
        aseq, slot, boot = self._aseq, (self._aseq - 1) % rm.RING_SLOTS, self._boot_id
        while True:
            generation = self._generation
            try:
                await self._send_assignment(slot, aseq, tracking, chute, reason)
                return
            except PlcRefused as exc:
                self.status.anomaly("assignment_refused", f"PLC refused assignment {aseq} for tracking {tracking}: "
                                    f"{exc}", level=logging.ERROR)
                raise
            except (LinkError, OSError, TimeoutError) as exc:
                self._fail(LinkError(f"assignment not delivered: {exc}"), generation)
                failure = exc
            if not await self._reconnected(generation, until_mono):
                raise LinkError(f"assignment {aseq} for tracking {tracking} not delivered: {failure}") from failure
            if self._boot_id != boot:
                raise LinkError(f"assignment {aseq} for tracking {tracking} not delivered: the PLC restarted "
                                f"meanwhile and no longer tracks the parcel")
            if self._contact_ring and self._contact_ring[slot] == aseq:
                self.status.count("assignment_arrived_unanswered")
                return
            if self._aseq - aseq >= rm.RING_SLOTS - 1:
                raise LinkError(f"assignment {aseq} for tracking {tracking} not delivered: its ring slot has "
                                f"been reused meanwhile")
            self.status.anomaly("assignment_retried", f"assignment {aseq} for tracking {tracking} written again "
                                f"after the PLC link came back ({failure})")

    async def _reconnected(self, generation: int | None, until_mono: float | None) -> bool:
        """Wait for a connection newer than `generation` while there is time (False: none in time)."""
        if until_mono is None:
            return False
        loop = asyncio.get_running_loop()
        while generation == self._generation or not self.status.connected:
            left = until_mono - loop.time()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, RECONNECT_POLL_S))
        return True

    async def set_disabled_chutes(self, chutes: set[int]) -> None:
        """Tell the PLC which chutes the technician has disabled; sent again after every reconnect."""
        bad = [c for c in chutes if not 1 <= c <= rm.MAX_CHUTES]
        if bad:
            raise ValueError(f"chutes {bad} cannot be disabled: chutes are 1..{rm.MAX_CHUTES}")
        self._disabled = set(chutes)
        if not self.status.connected:
            log.warning("disabled chutes %s will reach the PLC as soon as the link is up", sorted(chutes))
            return
        generation = self._generation
        try:
            await self._send_disabled(self._disabled)
        except PlcRefused:
            raise
        except (LinkError, OSError, TimeoutError) as exc:
            log.warning("disabled chutes not delivered (%s): they are sent again when the link is back", exc)
            self._fail(LinkError(f"chute states not delivered: {exc}"), generation)


def open_link(protocol: str, settings: LinkSettings) -> PlcLink:
    try:
        target = BACKENDS[protocol]
    except KeyError:
        raise ValueError(f"unknown PLC protocol {protocol!r}; use one of: {', '.join(sorted(BACKENDS))}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(settings)
