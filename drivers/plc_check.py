"""`sortline plc-check`: a PLC checked against docs/plc-interface.md from outside, before a line runs.

It connects as the controller does and reads as the controller reads (Modbus: the header at
connect, the controller block, then one read of the header and scan ring every poll interval, the
confirmation ring when CONFIRM_SEQ moved and the chute states every 25 polls; OPC UA: the
controller's session, browse paths, subscription and Read requests). It writes nothing unless
asked: with `--write-heartbeat` it writes the controller's heartbeat registers (the acknowledgements
back as they were read) and watches the PLC follow. The result is a report a technician can file:
each check PASS, WARN, FAIL or SKIP with what was found, what was expected and what to check; the
exit status is 1 when a check failed. docs/plc-check.md shows it against the simulator and wrong PLCs.

How each protocol reaches the PLC is drivers/plc_check_peers.py; asyncua is imported only for an
opc.tcp:// endpoint.
"""
import argparse
import asyncio
import difflib
import json
import logging
import math
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

from . import regmap as rm
from .link import PLC_HEARTBEAT_STALE_S, LinkSettings, OpcUaSettings
from .plc_check_peers import FAIL, PASS, SKIP, WARN, Check, LinkTrouble, ModbusPeer, Snapshot, Unreachable, opcua_peer

HEARTBEAT_PERIOD_S = 0.1          # docs/plc-interface.md: PLC_HEARTBEAT +1 every 100 ms
RATE_TOLERANCE = 0.15             # beyond this the PLC's 100 ms timer is off, though the controller copes
FOLLOW_BEATS = 15                 # --write-heartbeat: 1.5 s of the controller's heartbeat
CLEAR_GRACE_S = 1.0               # FLAGS bit 0 not cleared this long after the PLC's timeout: it never will
CLEAR_EARLY_S = 0.05
CLEAR_LATE_S = 0.2                # the PLC's cycle and two of this tool's polls
# docs/plc-interface.md, Timing: a PLC serving one Modbus request per cycle answers within a cycle, and
# the controller needs about 200 answers a second at 40,000 parcels/h (docs/performance.md, PLC cycle
# time): measured against the simulator, a 20 ms cycle sent 3.5 % of the parcels late, 10 ms lost a few
# in one run of two, 5 ms none.
MAX_CYCLE_S = 0.020
GOOD_CYCLE_S = 0.005


@dataclass
class Report:
    target: str
    seconds: float = 0.0                          # how long the PLC was read at the controller's pace
    started_wall: float = field(default_factory=time.time)
    checks: list[Check] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    def add(self, *checks: Check) -> None:
        self.checks.extend(checks)

    def skip(self, names, why: str) -> None:
        done = {c.name for c in self.checks}
        self.add(*(Check(n, SKIP, f"not checked: {why}") for n in names if n not in done))

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.checks)

    @property
    def result(self) -> str:
        return FAIL if self.count(FAIL) else WARN if self.count(WARN) else PASS

    @property
    def exit_code(self) -> int:
        return 1 if self.result == FAIL else 0

    def text(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_wall))
        lines = [f"sortline plc-check {_version()}: PLC commissioning report",
                 f"PLC       {self.target}",
                 f"checked   {when}, " + (f"{self.seconds:.0f} s of reads at the controller's pace" if self.seconds
                                              else "no reads at the controller's pace"),
                 f"written   {'; '.join(self.written) or 'nothing'}",
                 f"result    {self.result}: {self.count(FAIL)} failed, {self.count(WARN)} warnings, "
                 f"{self.count(PASS)} passed, {self.count(SKIP)} not checked", ""]
        for c in self.checks:
            lines.append(f"{c.status}  {c.name}")
            for label, text in (("found", c.found), ("expected", c.expected), ("check", c.check)):
                if text:
                    lines.append(f"      {label:<9} {text}")
        return "\n".join(lines)

    def as_json(self) -> str:
        return json.dumps({"tool": "sortline plc-check", "version": _version(), "plc": self.target,
                           "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_wall)),
                           "seconds": self.seconds, "written": self.written, "result": self.result,
                           "checks": [asdict(c) for c in self.checks]}, indent=1)


def _version() -> str:
    try:
        return metadata.version("sortline")
    except metadata.PackageNotFoundError:
        return "(not installed)"


@dataclass(frozen=True)
class Options:
    protocol: str                                 # "modbus" or "opcua"
    settings: LinkSettings
    seconds: float = 30.0
    max_cycle_s: float = MAX_CYCLE_S
    heartbeat_timeout_s: float = 0.5
    write_heartbeat: bool = False
    remember: Path | None = None
    as_json: bool = False


# -- the run ----------------------------------------------------------------------------------------
MEASURED = ("version", "boot_id", "line_state", "heartbeat", "scan_ring", "confirm_ring", "latency")
VALUES = ("boot_id", "line_state", "heartbeat", "scan_ring", "confirm_ring", "controller_watch")   # read from the block


def make_peer(opts: Options):
    return opcua_peer(opts.settings) if opts.protocol == "opcua" else ModbusPeer(opts.settings)


async def check(opts: Options, peer=None) -> Report:
    """Every check against one PLC, in the order a technician reads them."""
    peer = peer or make_peer(opts)
    report = Report(peer.target)
    later = (*peer.layout_names, *MEASURED, *peer.extra_names, "controller_watch", "heartbeat_follow",
             "boot_id_retained")
    try:
        try:
            found = await peer.open()
        except Unreachable as exc:
            report.add(Check("connection", FAIL, exc.found, f"{peer.server} at {peer.address}", exc.check))
            report.skip(later, "no connection")
            return report
        report.add(Check("connection", PASS, found, f"{peer.server} at {peer.address}"))
        report.add(*await peer.layout())
        try:
            first = await peer.poll()
        except LinkTrouble as exc:
            report.skip(later, f"the PLC's values cannot be read ({exc})")
            return report
        loop = asyncio.get_running_loop()
        started_s = loop.time()
        snaps, trouble = await measure(peer, opts.seconds, opts.settings.poll_interval_s)
        elapsed_s = report.seconds = loop.time() - started_s
        snaps.insert(0, first)
        latency = latency_check(peer, elapsed_s, opts, trouble)
        report.add(*identity_checks(peer, snaps, await peer.version_hint()))
        report.add(heartbeat_check(peer, snaps),
                   ring_check(peer, "scan_ring", "scan_seq", [(s.scan_seq, s.scan_slots, None, s) for s in snaps
                                                             if s.scan_seq is not None]),
                   ring_check(peer, "confirm_ring", "confirm_seq", confirm_views(snaps)), latency)
        report.add(*peer.extra_checks(snaps))
        report.add(watch_check(peer, snaps, opts.heartbeat_timeout_s))
        if opts.write_heartbeat:
            report.add(await follow_check(peer, snaps, opts))
        else:
            report.add(Check("heartbeat_follow", SKIP, "not checked: nothing is written without --write-heartbeat",
                             "EDGE_HB_SEEN follows the controller heartbeat, FLAGS bit 0 set while it beats and "
                             "cleared after the PLC's timeout",
                             f"with the controller stopped, run again with --write-heartbeat: it writes "
                             f"{peer.name('edge_heartbeat')} and the acknowledgements after it, as read"))
        report.add(boot_memory_check(opts.remember, f"{peer.protocol} {peer.address}", snaps[-1].boot))
        report.skip(later, "it needs a check above that failed")
        if any(c.name == "version" and c.status == FAIL for c in report.checks):
            for c in report.checks:                 # what was read may not be the PLC block at all
                if c.name in VALUES and c.status in (FAIL, WARN):
                    c.check = f"the version check first: these registers may not be the PLC block; then {c.check}"
                elif c.name in VALUES and c.status == PASS:
                    c.status, c.found = SKIP, f"not judged while VERSION is wrong ({c.found})"
    finally:
        report.written = list(peer.written)
        await peer.close()
    return report


async def measure(peer, seconds: float, poll_s: float) -> tuple[list[Snapshot], str]:
    """Poll as the controller polls for `seconds`: the snapshots and, if the PLC stopped answering, why."""
    loop = asyncio.get_running_loop()
    started_s = loop.time()
    peer.latencies_s.clear()
    snaps: list[Snapshot] = []
    while loop.time() - started_s < seconds:
        try:
            snaps.append(await peer.poll())
        except LinkTrouble as exc:
            return snaps, f"{exc}, {loop.time() - started_s:.1f} s into the measurement"
        await asyncio.sleep(poll_s)
    return snaps, ""


# -- what the values say ---------------------------------------------------------------------------------
def identity_checks(peer, snaps: list[Snapshot], version_hint: str | None) -> list[Check]:
    first = snaps[0]
    versions = sorted({s.version for s in snaps})
    if versions == [rm.INTERFACE_VERSION]:
        version = Check("version", PASS, f"{peer.name('version')} holds {first.version}",
                        f"interface version {rm.INTERFACE_VERSION}")
    else:
        version = Check("version", FAIL, f"{peer.name('version')} holds {', '.join(map(str, versions))}",
                        f"interface version {rm.INTERFACE_VERSION}; the controller does not connect otherwise",
                        version_hint or f"that {peer.address} is the sorter PLC, the address of the PLC block "
                        f"([plc] plc_base, --plc-base) and that the PLC program writes {rm.INTERFACE_VERSION} there")
    boots = list(dict.fromkeys(s.boot for s in snaps))
    if 0 in boots:
        boot = Check("boot_id", FAIL, f"{peer.name('boot')} holds 0", "1..65535, never 0, +1 at every PLC start",
                     "the PLC program's boot counter: a retentive counter counted up once at every start, in the "
                     "program's start-up part")
    elif len(boots) > 1:
        boot = Check("boot_id", WARN, f"{peer.name('boot')} changed during the check: {' -> '.join(map(str, boots))}",
                     "one value while the PLC runs", "whether the PLC restarted during the check; if it did not, "
                     "the PLC program writes BOOT_ID somewhere other than at start")
    else:
        boot = Check("boot_id", PASS, f"{peer.name('boot')} holds {boots[0]}", "1..65535, never 0")
    states = list(dict.fromkeys(s.line_state for s in snaps))
    names = [f"{v} {rm.LineState(v).name}" if v in rm.LineState._value2member_map_ else f"{v} (unknown)"
             for v in states[:4]]
    shown = ", then ".join(names) + (f", and {len(states) - 4} more values" if len(states) > 4 else "")
    known = ", ".join(f"{s.value} {s.name}" for s in rm.LineState)
    if all(v in rm.LineState._value2member_map_ for v in states):
        state = Check("line_state", PASS, f"{peer.name('line_state')}: {shown}", f"one of {known}")
    else:
        state = Check("line_state", FAIL, f"{peer.name('line_state')}: {shown}", f"one of {known}",
                      "the PLC program's line state codes against docs/plc-interface.md, Line state")
    return [version, boot, state]


def heartbeat_check(peer, snaps: list[Snapshot]) -> Check:
    where = peer.name("heartbeat")
    expected = (f"+1 every {HEARTBEAT_PERIOD_S * 1000:.0f} ms ({1 / HEARTBEAT_PERIOD_S:.0f} a second); the controller "
                f"takes the PLC for stopped after {PLC_HEARTBEAT_STALE_S:g} s without a change")
    elapsed_s = snaps[-1].t_s - snaps[0].t_s
    beats, back, gap_s, changed_s = 0, 0, 0.0, snaps[0].t_s
    for a, b in zip(snaps, snaps[1:]):
        if b.heartbeat == a.heartbeat:
            continue
        step = (b.heartbeat - a.heartbeat) % 0x10000
        if step > 0x8000:
            back += 1
        else:
            beats += step
        gap_s, changed_s = max(gap_s, b.t_s - changed_s), b.t_s
    gap_s = max(gap_s, snaps[-1].t_s - changed_s)
    program = (f"that the PLC program runs (CPU in RUN) and increments {where} every "
               f"{HEARTBEAT_PERIOD_S * 1000:.0f} ms")
    if elapsed_s <= 0:
        return Check("heartbeat", SKIP, "not checked: one poll only", expected)
    if beats == 0 and back == 0:
        return Check("heartbeat", FAIL, f"{where} stayed at {snaps[0].heartbeat} for {elapsed_s:.1f} s", expected,
                     program)
    rate = beats / elapsed_s
    found = f"{where} went {snaps[0].heartbeat} -> {snaps[-1].heartbeat} in {elapsed_s:.1f} s: {rate:.1f} a second"
    if back:
        found += f"; it went back {back} time(s)"
    if gap_s > PLC_HEARTBEAT_STALE_S:
        return Check("heartbeat", FAIL, f"{found}; it stood still for {gap_s:.1f} s at once", expected, program)
    if back or abs(rate * HEARTBEAT_PERIOD_S - 1) > RATE_TOLERANCE:
        return Check("heartbeat", WARN, found, expected,
                     f"the PLC's {HEARTBEAT_PERIOD_S * 1000:.0f} ms timer and that nothing else writes {where}")
    return Check("heartbeat", PASS, found, expected)


def confirm_views(snaps: list[Snapshot]):
    """Confirmation rings with the sequence numbers around them: a confirmation may land between the
    poll that carried CONFIRM_SEQ and the read of the ring, so the next poll's CONFIRM_SEQ bounds it."""
    views = []
    for i, s in enumerate(snaps):
        if s.confirm_slots is not None and s.confirm_seq is not None:
            after = snaps[i + 1].confirm_seq if i + 1 < len(snaps) else None
            views.append((s.confirm_seq, s.confirm_slots, after, s))
    return views


def ring_problem(newest: int, slots: tuple[int, ...], newest_after: int | None = None) -> str | None:
    """What breaks the ring rules in one snapshot: slot (seq - 1) % 16 holds seq; no slot holds a seq above
    the newest."""
    n, top = len(slots), max(newest, newest_after or 0)
    for i, seq in enumerate(slots):
        if seq > top:
            return f"slot {i} holds seq {seq}, above the newest {newest}"
        if seq and (seq - 1) % n != i:
            return f"slot {i} holds seq {seq}, which belongs in slot {(seq - 1) % n}"
    if newest:
        held = slots[(newest - 1) % n]
        if not newest <= held <= top:
            return (f"the newest seq is {newest} but its slot {(newest - 1) % n} holds {held} (the PLC writes the "
                    f"slot first, then the sequence number)")
    return None


def ring_check(peer, name: str, seq_field: str, views) -> Check:
    where = peer.name(seq_field)
    expected = f"slot (seq - 1) % {rm.RING_SLOTS} holds seq, up to {where}; no slot holds a seq above it"
    if not views:
        return Check(name, SKIP, "not checked: the ring could not be read", expected)
    bad = []
    for newest, slots, after, snap in views:
        problem = ring_problem(newest, slots, after)
        if problem is None and snap.ring_boots and any(b != snap.boot for b in snap.ring_boots):
            problem = f"the event arrays carry boot ids {list(snap.ring_boots)}, BootId is {snap.boot}"
        if problem:
            bad.append(problem)
    first, last = views[0][0], views[-1][0]
    moved = f"{where} went {first} -> {last}" if last != first else f"{where} stayed at {first}"
    if last == first and not bad:
        moved += " (no event during the check: run it while parcels pass to see the ring fill)"
    if bad:
        return Check(name, FAIL, f"{len(bad)} of {len(views)} snapshots break the ring rules, first: {bad[0]}; {moved}",
                     expected, "the order in which the PLC program writes the ring slot and the sequence number "
                     "(docs/plc-interface.md, The handshake)")
    return Check(name, PASS, f"{len(views)} snapshot{'s' if len(views) > 1 else ''} consistent; {moved}", expected)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def latency_check(peer, elapsed_s: float, opts: Options, trouble: str) -> Check:
    lat_ms = [x * 1000 for x in peer.latencies_s]
    timeout_ms, limit_ms = opts.settings.timeout_s * 1000, opts.max_cycle_s * 1000
    expected = (f"p99 at most {limit_ms:g} ms, the longest PLC cycle the line allows (docs/plc-interface.md, Timing), "
                f"{GOOD_CYCLE_S * 1000:g} ms or less for no parcel late at 40,000 an hour; none over the "
                f"{timeout_ms:g} ms timeout")
    network = ("the PLC's cycle time (a Modbus server that takes one request per cycle answers within a cycle), "
               "other clients of its server (HMI, SCADA), and the network between this PC and the PLC")
    if not lat_ms:
        return Check("latency", FAIL if trouble else SKIP, trouble or "not measured", expected, network)
    p50, p99 = percentile(lat_ms, 0.5), percentile(lat_ms, 0.99)
    over = sum(x > timeout_ms for x in lat_ms)
    found = (f"{len(lat_ms)} requests in {elapsed_s:.1f} s ({len(lat_ms) / elapsed_s:.0f} a second; "
             f"{peer.pace.format(ms=f'{opts.settings.poll_interval_s * 1000:g}')}): p50 {p50:.1f} ms, p99 "
             f"{p99:.1f} ms, max {max(lat_ms):.1f} ms")
    if peer.poll_note:
        found += f"; {peer.poll_note}"
    if over:
        found += f"; {over} over the {timeout_ms:g} ms timeout (the controller drops the link on each)"
    if trouble:
        return Check("latency", FAIL, f"{found}; then {trouble}", expected, network)
    status = FAIL if over or p99 > limit_ms else WARN if p99 > GOOD_CYCLE_S * 1000 else PASS
    return Check("latency", status, found, expected, network if status != PASS else "")


def watch_check(peer, snaps: list[Snapshot], timeout_s: float) -> Check:
    """Read only: with no controller heartbeat coming, FLAGS bit 0 must be clear after the PLC's timeout."""
    seen, flags = peer.name("hb_seen"), peer.name("flags")
    expected = f"{flags} bit 0 clear when {seen} has not changed for {timeout_s * 1000:g} ms"
    values = list(dict.fromkeys(s.hb_seen for s in snaps))
    if len(values) > 1:
        return Check("controller_watch", WARN, f"{seen} changed during the check ({values[0]} -> {values[-1]}): a "
                     f"controller is writing its heartbeat", expected,
                     "stop the line's controller for commissioning: the latency figures include its load, and "
                     "--write-heartbeat needs the heartbeat to itself")
    late = [s for s in snaps if s.t_s - snaps[0].t_s > timeout_s + CLEAR_LATE_S]
    if not late:
        return Check("controller_watch", SKIP, "not checked: the check was shorter than the PLC's timeout", expected)
    alive = [s for s in late if s.flags & 1]
    if alive:
        return Check("controller_watch", FAIL, f"{flags} bit 0 set although {seen} stayed at {values[0]} for "
                     f"{late[-1].t_s - snaps[0].t_s:.1f} s", expected,
                     f"the PLC program's controller watchdog: it must clear bit 0 and send every parcel to the end "
                     f"chute {timeout_s * 1000:g} ms after the controller heartbeat stops changing")
    return Check("controller_watch", PASS, f"{flags} bit 0 clear; {seen} stayed at {values[0]} for "
                 f"{late[-1].t_s - snaps[0].t_s:.1f} s", expected)


async def follow_check(peer, snaps: list[Snapshot], opts: Options) -> Check:
    """--write-heartbeat: beat as the controller does, then stop, and watch EDGE_HB_SEEN and FLAGS."""
    seen, flags = peer.name("hb_seen"), peer.name("flags")
    timeout_ms = opts.heartbeat_timeout_s * 1000
    expected = (f"{seen} = every value written; {flags} bit 0 set while the heartbeat changes, cleared "
                f"{timeout_ms:g} ms after it stops")
    if len({s.hb_seen for s in snaps}) > 1:
        return Check("heartbeat_follow", SKIP, "not checked: a controller is writing its heartbeat (see "
                     "controller_watch); nothing was written", expected, "stop the line's controller and run again")
    loop = asyncio.get_running_loop()
    interval_s, poll_s = opts.settings.heartbeat_interval_s, opts.settings.poll_interval_s
    try:
        hb, scan_ack, confirm_ack = await peer.controller_values()
        lags_s: list[float] = []
        set_s = cleared_s = None
        first_s = last_s = loop.time()
        for i in range(FOLLOW_BEATS):
            hb = (hb + 1) & 0xFFFF
            last_s = loop.time()
            first_s = first_s if i else last_s
            await peer.write_heartbeat(hb, scan_ack, confirm_ack)
            lag_s = None
            while loop.time() < last_s + interval_s:
                s = await peer.poll()
                if lag_s is None and s.hb_seen == hb:
                    lag_s = s.t_s - last_s
                    lags_s.append(lag_s)
                if set_s is None and s.flags & 1:
                    set_s = s.t_s - first_s
                await asyncio.sleep(poll_s)
        while set_s is not None and loop.time() < last_s + opts.heartbeat_timeout_s + CLEAR_GRACE_S:
            s = await peer.poll()
            if not s.flags & 1:
                cleared_s = s.t_s - last_s
                break
            await asyncio.sleep(poll_s)
    except LinkTrouble as exc:
        return Check("heartbeat_follow", FAIL, f"the heartbeat write or the reads after it failed: {exc}", expected,
                     f"that the PLC accepts writes of {peer.name('edge_heartbeat')} from this PC (function code 16 / "
                     f"write access for this user)")
    written = f"heartbeats {(hb - FOLLOW_BEATS + 1) & 0xFFFF}..{hb} written every {interval_s * 1000:g} ms"
    if not lags_s:
        return Check("heartbeat_follow", FAIL, f"{written}; {seen} never showed one", expected,
                     f"that the PLC program copies {peer.name('edge_heartbeat')} into {seen}")
    found = (f"{written}; {seen} showed {len(lags_s)} of {FOLLOW_BEATS} within {max(lags_s) * 1000:.0f} ms; "
             + (f"{flags} bit 0 set {set_s * 1000:.0f} ms after the first" if set_s is not None
                else f"{flags} bit 0 never set"))
    if set_s is None:
        return Check("heartbeat_follow", FAIL, found, expected, "the PLC program's controller watchdog: bit 0 must "
                     "be set while the controller heartbeat changes, or every parcel goes to the end chute")
    if cleared_s is None:
        return Check("heartbeat_follow", FAIL, f"{found}; still set {timeout_ms + CLEAR_GRACE_S * 1000:g} ms after "
                     f"the last", expected, "the PLC program's controller watchdog: a PLC that does not notice a "
                     "lost controller diverts parcels on stale decisions")
    found += f", cleared {cleared_s * 1000:.0f} ms after the last"
    if not -CLEAR_EARLY_S <= cleared_s - opts.heartbeat_timeout_s <= CLEAR_LATE_S or len(lags_s) < FOLLOW_BEATS:
        return Check("heartbeat_follow", WARN, found, expected,
                     f"the watchdog time in the PLC program against the line's heartbeat_timeout_ms ({timeout_ms:g})")
    return Check("heartbeat_follow", PASS, found, expected)


def boot_memory_check(path: Path | None, target: str, boot: int) -> Check:
    """BOOT_ID must survive a power cycle and count up: compared with the value stored by the last run."""
    expected = "BOOT_ID one higher after each PLC start (retentive; 65535 is followed by 1)"
    how = ("power-cycle the PLC (off, on, program in RUN), then run this check again with the same --remember file")
    if path is None:
        return Check("boot_id_retained", SKIP, "not checked: give --remember FILE to keep the boot id between two "
                     "runs", expected, how)
    try:
        memory = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        if not isinstance(memory, dict):
            raise ValueError("not a table of PLCs")
    except (OSError, ValueError) as exc:
        return Check("boot_id_retained", WARN, f"{path} cannot be read as a boot id record ({exc})", expected,
                     "give a new file to --remember")
    before = memory.get(target)
    memory[target] = {"boot_id": boot, "seen_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        path.write_text(json.dumps(memory, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        return Check("boot_id_retained", WARN, f"boot id {boot} cannot be stored in {path} ({exc.strerror})",
                     expected, "give --remember a file this user may write")
    if not isinstance(before, dict) or not isinstance(before.get("boot_id"), int):
        return Check("boot_id_retained", SKIP, f"boot id {boot} stored in {path}", expected, how)
    old, when = before["boot_id"], before.get("seen_utc", "?")
    found = f"boot id {old} at the run of {when}, {boot} now"
    starts = (boot - old) % 0xFFFF
    if boot == old:
        return Check("boot_id_retained", WARN, found, expected, "if the PLC was power-cycled since that run, BOOT_ID "
                     "is not counted up at start: the controller then cannot tell a restart, fix the PLC program; "
                     "if it was not, " + how)
    if boot < old and starts > 100:
        return Check("boot_id_retained", FAIL, f"{found}: it went back", expected, "that the boot counter is in "
                     "retentive memory and counts up at every start; a counter that starts again at power-up "
                     "repeats its values")
    return Check("boot_id_retained", PASS, found + (f" ({starts} starts since)" if starts > 1 else ""), expected)


# -- the command line ---------------------------------------------------------------------------------
# The [plc] keys of a line config (edge/config.py is their schema; tests hold the two together). The
# drivers do not import the controller's config loader, so this reads the one section it needs.
PLC_KEYS = {"protocol": str, "host": str, "port": int, "unit": int, "plc_base": int, "edge_base": int,
            "poll_interval_ms": float, "timeout_ms": float, "heartbeat_interval_ms": float,
            "heartbeat_timeout_ms": float, "reconnect_max_ms": float, "opcua_path": str, "opcua_namespace": str,
            "opcua_security": str, "opcua_certificate": str, "opcua_private_key": str,
            "opcua_server_certificate": str, "opcua_auth": str, "opcua_username": str, "opcua_password": str,
            "opcua_password_file": str}
PLC_FILES = ("opcua_certificate", "opcua_private_key", "opcua_server_certificate", "opcua_password_file")


class ConfigProblem(ValueError):
    pass


def _beside(config: Path, relative: str) -> str:
    """A file named in the config, relative to the config file (as edge/config_problems.py resolves it)."""
    if not relative:
        return ""
    p = Path(relative)
    if p.is_absolute():
        return str(p)
    joined = config.parent / p
    return str(joined.parent.resolve() / joined.name if joined.name not in ("", ".", "..") else joined.resolve())


def from_line_config(path: Path) -> tuple[str, LinkSettings, dict]:
    """Protocol, link settings and the PLC's heartbeat timeout from a line config, read from its [plc] section
    alone, so that a PLC can be checked before the rest of the line config is done."""
    whole = f"`sortline check-config {path}` checks the whole file"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigProblem(f"{path}: cannot read the line config ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigProblem(f"{path}: not valid TOML ({exc}); {whole}") from None
    plc = raw.get("plc", {})
    if not isinstance(plc, dict):
        raise ConfigProblem(f"{path}: [plc] must be a table; {whole}")
    for key, value in plc.items():
        kind = PLC_KEYS.get(key)
        if kind is None:
            close = difflib.get_close_matches(key, PLC_KEYS, n=1)
            raise ConfigProblem(f"{path}: [plc] {key} is not a key of [plc]"
                                f"{f' (did you mean {close[0]}?)' if close else ''}; {whole}")
        ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
        if not ok or isinstance(value, bool):
            raise ConfigProblem(f"{path}: [plc] {key} = {value!r} must be "
                                f"{ {str: 'text in quotes', int: 'a whole number', float: 'a number'}[kind]}; {whole}")
    d = LinkSettings()
    o = OpcUaSettings()
    opcua = OpcUaSettings(path=plc.get("opcua_path", o.path), namespace=plc.get("opcua_namespace", o.namespace),
                          security=plc.get("opcua_security", o.security), auth=plc.get("opcua_auth", o.auth),
                          username=plc.get("opcua_username", o.username),
                          password=plc.get("opcua_password", o.password),
                          **{k.removeprefix("opcua_"): _beside(path, plc.get(k, "")) for k in PLC_FILES})
    settings = LinkSettings(host=plc.get("host", d.host), port=plc.get("port", d.port), unit=plc.get("unit", d.unit),
                            poll_interval_s=plc.get("poll_interval_ms", d.poll_interval_s * 1000) / 1000,
                            timeout_s=plc.get("timeout_ms", d.timeout_s * 1000) / 1000,
                            heartbeat_interval_s=plc.get("heartbeat_interval_ms", d.heartbeat_interval_s * 1000) / 1000,
                            reconnect_max_s=plc.get("reconnect_max_ms", d.reconnect_max_s * 1000) / 1000,
                            regmap=rm.RegisterMap(plc.get("plc_base", 0), plc.get("edge_base", 300)), opcua=opcua)
    return plc.get("protocol", "modbus"), settings, plc.get("heartbeat_timeout_ms", 500.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sortline plc-check", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check a PLC against docs/plc-interface.md from outside, as the controller connects and reads, "
                    "and print a commissioning report (exit status 1 when a check failed). Nothing is written "
                    "unless --write-heartbeat is given.",
        epilog="examples:\n  sortline plc-check --host 192.168.0.10 --port 502 --unit 1\n"
               "  sortline plc-check --endpoint opc.tcp://192.168.0.10:4840/sorter/\n"
               "  sortline plc-check --config configs/county-24.toml --remember plc-boot.json\n"
               "docs/plc-check.md says what each check means.")
    where = p.add_argument_group("the PLC (--host, --endpoint or --config; options given override the config)")
    where.add_argument("--config", type=Path, metavar="LINE.toml", help="a line config: its [plc] section")
    where.add_argument("--host", help="Modbus TCP: the PLC's address")
    where.add_argument("--port", type=int, help="Modbus TCP port (default 502)")
    where.add_argument("--unit", type=int, help="Modbus unit id (default 1)")
    where.add_argument("--plc-base", type=int, metavar="B", help="first register of the PLC block (default 0)")
    where.add_argument("--edge-base", type=int, metavar="E",
                       help="first register of the controller block (default 300)")
    where.add_argument("--endpoint", metavar="URL", help="OPC UA: opc.tcp://HOST:PORT/PATH")
    where.add_argument("--namespace",
                       help=f"OPC UA namespace URI of the interface (default {OpcUaSettings().namespace})")
    how = p.add_argument_group("the check")
    how.add_argument("--seconds", type=float, default=30.0,
                     help="how long to read at the controller's pace (default 30)")
    how.add_argument("--timeout-ms", type=float, help="the controller's limit for one answer (default 200)")
    how.add_argument("--max-cycle-ms", type=float, default=MAX_CYCLE_S * 1000,
                     help="the p99 latency limit (default 20: one request per 20 ms cycle already sends parcels "
                     "late at 40,000 an hour; docs/plc-interface.md, Timing)")
    how.add_argument("--heartbeat-timeout-ms", type=float, help="the PLC's controller watchdog time (default 500)")
    how.add_argument("--write-heartbeat", action="store_true", help="write the controller heartbeat for 1.5 s and "
                     "check that EDGE_HB_SEEN and FLAGS follow (stop the controller first)")
    how.add_argument("--remember", type=Path, metavar="FILE", help="keep the boot id in FILE and compare it with "
                     "the last run's: run, power-cycle the PLC, run again")
    how.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def parse(argv) -> Options:
    p = _parser()
    a = p.parse_args(argv)
    if not (a.host or a.endpoint or a.config):
        p.error("say which PLC: --host H (Modbus TCP), --endpoint opc.tcp://... (OPC UA) or --config LINE.toml")
    if a.host and a.endpoint:
        p.error("--host is Modbus TCP and --endpoint OPC UA: give one")
    protocol, s, hb_timeout_ms = "modbus", LinkSettings(), 500.0
    if a.config:
        try:
            protocol, s, hb_timeout_ms = from_line_config(a.config)
        except ConfigProblem as exc:
            p.error(str(exc))
    if a.endpoint:
        url = urlsplit(a.endpoint)
        try:
            port = url.port or 4840
        except ValueError:
            port = 0
        if url.scheme != "opc.tcp" or not url.hostname or not port:
            p.error(f"--endpoint {a.endpoint}: write opc.tcp://HOST:PORT/PATH, "
                    f"e.g. opc.tcp://192.168.0.10:4840/sorter/")
        protocol = "opcua"
        s = replace(s, host=url.hostname, port=port, opcua=replace(s.opcua, path=url.path))
    elif a.host:
        protocol = "modbus"
        s = replace(s, host=a.host, port=502 if a.config is None or a.port else s.port)
    other = [o for o, v, modbus in (("--unit", a.unit, True), ("--plc-base", a.plc_base, True),
                                    ("--edge-base", a.edge_base, True), ("--namespace", a.namespace, False))
             if v is not None and modbus != (protocol == "modbus")]
    if other:
        speaks, other_protocol = ("Modbus TCP", "OPC UA") if protocol == "modbus" else ("OPC UA", "Modbus TCP")
        p.error(f"{', '.join(other)}: for {other_protocol} only, and this PLC is checked over {speaks} "
                f"(--host, --endpoint or [plc] protocol)")
    if a.namespace:
        s = replace(s, opcua=replace(s.opcua, namespace=a.namespace))
    s = replace(s, port=a.port if a.port is not None else s.port, unit=a.unit if a.unit is not None else s.unit,
                timeout_s=a.timeout_ms / 1000 if a.timeout_ms is not None else s.timeout_s,
                regmap=rm.RegisterMap(s.regmap.plc_base if a.plc_base is None else a.plc_base,
                                      s.regmap.edge_base if a.edge_base is None else a.edge_base))
    problems = []
    if not 1 <= s.port <= 65535:
        problems.append(f"port {s.port}: 1-65535")
    if not 0 <= s.unit <= 255:
        problems.append(f"unit id {s.unit}: 0-255")
    if s.regmap.overlaps() or s.regmap.plc_base < 0 or s.regmap.edge_base < 0 or \
            max(s.regmap.plc_base + rm.PLC_BLOCK_WORDS, s.regmap.edge_base + rm.EDGE_BLOCK_WORDS) > 0x10000:
        problems.append(f"PLC block at {s.regmap.plc_base} ({rm.PLC_BLOCK_WORDS} registers) and controller block at "
                        f"{s.regmap.edge_base} ({rm.EDGE_BLOCK_WORDS}) must not overlap and must fit below 65536")
    if not 1 <= a.seconds <= 3600:
        problems.append(f"--seconds {a.seconds:g}: 1-3600")
    if not 0 < s.timeout_s <= 10:
        problems.append(f"timeout {s.timeout_s * 1000:g} ms: more than 0, at most 10000")
    if not 0 < a.max_cycle_ms <= 10_000 or (a.heartbeat_timeout_ms is not None and not 0 < a.heartbeat_timeout_ms):
        problems.append("--max-cycle-ms and --heartbeat-timeout-ms: more than 0")
    if problems:
        p.error("; ".join(problems))
    if a.heartbeat_timeout_ms is not None:
        hb_timeout_ms = a.heartbeat_timeout_ms
    return Options(protocol, s, a.seconds, a.max_cycle_ms / 1000, hb_timeout_ms / 1000, a.write_heartbeat,
                   a.remember, a.json)


def main(argv=None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)
    # The report carries every finding with its remedy; the links' own log lines would only repeat them.
    logging.getLogger("sortline.link").setLevel(logging.CRITICAL)
    try:
        peer = make_peer(opts)
    except ValueError as exc:           # OPC UA security settings that cannot work, each named
        print(f"sortline plc-check: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(check(opts, peer))
    except KeyboardInterrupt:
        print("sortline plc-check: interrupted, no report", file=sys.stderr)
        return 130
    print(report.as_json() if opts.as_json else report.text())
    return report.exit_code
