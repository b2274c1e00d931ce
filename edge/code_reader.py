"""The smart code reader beside the line camera: its results and its alarms.

Its TCP connection ([reader] mode "client" or "server", reconnects), its counts and its link and
input alarms are edge/tcp_input.py's. Results are framed and parsed (edge/code_reader_format.py),
matched to the PLC's scans (edge/code_reader_match.py) and read as labels (edge/code_reader_read.py).

A parcel waits for its result at most [reader] wait_ms after its scan and never past its own
deadline; whatever the reader does (falls silent, floods the socket, sends garbage) costs a
parcel that much at most, and what could not be used is counted and shown with what to check.
"""
from __future__ import annotations

import asyncio
import collections
import time

from .alarms import Alarms
from .code_reader_format import Layout, Parsed, Problem
from .code_reader_match import Matcher, Result
from .tcp_input import TcpInput

FLOOD_PER_S = 200                # results a second; a line has a few dozen parcels a second at most
SILENT_AFTER = 10                # parcels in a row without any result from a connected reader
ROUTED_WINDOW, ROUTED_MIN = 50, 10   # parcels whose codes routed them or not: the last 50, at least 10

REMEDIES = {
    "garbage": "compare the reader's output format with [reader] prefix, template or pattern and code_separator "
               "(docs/equipment.md has the common vendors' settings)",
    "partial": "check the network cable and the reader's framing: each result must end with its terminator "
               "([reader] framing)",
    "overlong": "check [reader] framing against the reader's output: a missing line end or ETX runs results together",
    "flood": f"the reader sent more than {FLOOD_PER_S} results in a second: check its trigger mode (continuous "
             f"reading sends without pause) and that nothing else sends to this port",
    "unknown_trigger": "the reader's trigger ids are not the PLC's tracking numbers: set [reader] match = \"time\", "
                       "or have the PLC trigger the reader with its tracking number",
    "late": "the reader answers later than [reader] wait_ms after the scan: shorten its decode time or raise wait_ms",
    "unmatched": "the reader answers later than [reader] wait_ms after the scan, or it is triggered without a "
                 "parcel: check its trigger source and decode time",
}


class CodeReader(TcpInput):
    name = "code reader"
    section = "reader"
    link_alarm = "code_reader_link"
    input_alarm = "code_reader_input"
    frames_are = "results"
    without_link = "parcels are read from their images only"
    without_input = "other parcels are decided as usual"
    remedies = REMEDIES

    def __init__(self, reader: dict, alarms: Alarms | None = None):
        super().__init__(reader, alarms)
        self.layout = Layout.from_config(reader)
        self.wait_s = reader["wait_ms"] / 1000
        self.read_images = reader["read_images"]
        self.matcher = Matcher(reader["match"], self.wait_s)
        self._no_result_run = 0
        self._no_result_since_wall = 0.0
        self._second = (0, 0)                  # (monotonic second, results in it)
        self._routed: collections.deque[bool] = collections.deque(maxlen=ROUTED_WINDOW)

    # -- life cycle ---------------------------------------------------------------------------------
    async def stop(self) -> None:
        from .readers import use_plan_rules
        use_plan_rules(None, None)
        await super().stop()

    def use_plan(self, plan) -> None:
        """The plan's courier formats tell waybills among the codes, as in the label readers."""
        from .readers import use_plan_rules
        use_plan_rules(plan.courier_table, plan.routing_shapes)

    def note_routed(self, routed: bool) -> None:
        """Whether a parcel's codes routed it alone (else its image was read too)."""
        self._routed.append(routed)

    def images_needed(self) -> bool:
        """Most of the last parcels needed their image: it is worth reading before the result comes."""
        return len(self._routed) >= ROUTED_MIN and sum(self._routed) * 2 < len(self._routed)

    # -- the parcel's side ------------------------------------------------------------------------
    async def result_for(self, tracking: int, scanned_mono: float, until_mono: float) -> Result | None:
        """This parcel's result, waited for until `wait_ms` after the scan or `until_mono`, the sooner.

        A reader that is not connected, or has sent nothing for SILENT_AFTER parcels in a row, is
        not waited for until it sends again: its parcels go to their images at once (a result
        already here is still taken)."""
        until_mono = min(until_mono, scanned_mono + self.wait_s)
        if not self.connected or self._no_result_run >= SILENT_AFTER:
            until_mono = scanned_mono
        result = await self.matcher.wait(tracking, scanned_mono, until_mono)
        self.counts["parcels"] += 1
        if result is None:
            self.counts["without_result"] += 1
            if not self._no_result_run:
                self._no_result_since_wall = time.time()
            self._no_result_run += 1
        else:
            self.counts["with_result" if result.codes else "no_read"] += 1
            self._no_result_run = 0
        return result

    # -- results ------------------------------------------------------------------------------------
    def _frames(self, items: list) -> None:
        now = asyncio.get_running_loop().time()
        for item in items:
            if isinstance(item, Problem):
                self._problem(item)
                continue
            second, seen = self._second
            if int(now) != second:
                second, seen = int(now), 0
            self._second = (second, seen + 1)
            if seen >= FLOOD_PER_S:
                self.problems["flood"] += 1
                if seen == FLOOD_PER_S:
                    self._problem(Problem("flood", f"more than {FLOOD_PER_S} results within a second: the rest of "
                                                   f"that second is dropped unread"), count=False)
                continue
            parsed = self.layout.parse(item)
            if isinstance(parsed, Problem):
                self._problem(parsed)
                continue
            self._result(parsed, item, now)

    def _result(self, parsed: Parsed, frame: bytes, now: float) -> None:
        self.counts["results"] += 1
        self._no_result_run = 0               # sending again: its parcels wait for it again
        text = frame.decode("utf-8", "replace")[:200]
        problem = self.matcher.add(Result(parsed.trigger, parsed.codes, now, text))
        if problem is not None:
            self._problem(problem)

    # -- alarms -------------------------------------------------------------------------------------
    def _check(self, now: float) -> None:
        for problem in self.matcher.expire(now):
            self._problem(problem)
        silent = self.connected and self._no_result_run >= SILENT_AFTER
        since = time.strftime("%H:%M:%S", time.localtime(self._no_result_since_wall))
        self.alarms.set("code_reader_silent", (
            f"the code reader at {self.address} is connected but has sent no result since {since} ({SILENT_AFTER} "
            f"parcels or more in a row): they are read from their images only",
            "check the reader's trigger (the photo-eye's wiring to it, its trigger mode) and that its result output "
            "is switched on") if silent else None)


def open_code_reader(config, alarms: Alarms) -> CodeReader | None:
    """The line's code reader, or None when [reader] mode is "off"."""
    reader = config["reader"]
    return None if reader["mode"] == "off" else CodeReader(reader, alarms)
