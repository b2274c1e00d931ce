"""The scale or dimensioner (DWS) before the scan point: one line of text per parcel over TCP.

A line names the parcel by the PLC's tracking number (the scale is triggered by the PLC, or
reads it from the PLC), then its weight (kg or g) and optionally its length, width and height in
mm, in the order [scale] fields gives: "1201,2.350,400,300,200" or "1201,2350g". The connection
and framing are those of the code reader (edge/tcp_input.py, edge/code_reader_format.py).

A parcel never waits for its weight: the decision takes it when it came before, and decides
without it otherwise. A weight below zero or above [scale] max_weight_kg, or a side outside
1 mm to max_side_mm, is counted, alarmed with what to check, and not used.
"""
from __future__ import annotations

import asyncio
import collections
import re
from dataclasses import dataclass

from .alarms import Alarms
from .code_reader_format import Problem, shown
from .tcp_input import TcpInput

FIELDS = ("id", "weight", "length", "width", "height", "skip")
KEPT = 4096                      # weighings waiting for their parcel; a line decides within a second
KEPT_S = 30.0                    # a weighing older than this found no parcel: the id was not a tracking number
_NUMBER = re.compile(r"^([+-]?[0-9]+(?:\.[0-9]+)?)\s*(kg|g)?$", re.IGNORECASE)

REMEDIES = {
    "garbage": "compare the scale's output format with [scale] fields and separator (docs/equipment.md, Scale and "
               "dimensioner)",
    "partial": "check the network cable and the scale's framing: each line must end with its terminator "
               "([scale] framing)",
    "overlong": "check [scale] framing against the scale's output: a missing line end or ETX runs lines together",
    "negative": "the scale's zero has drifted or something leans on the platform: clear it and zero (tare) the "
                "scale; then check its calibration with a known weight",
    "absurd": "a weight above [scale] max_weight_kg or a side outside 1 mm to max_side_mm: check the unit "
              "([scale] weight_unit, kg or g), the field order ([scale] fields) and the scale's calibration",
    "late": "weighings that came after their parcel's decision: the scale must send before the parcel reaches "
            "the scan point plus the decision budget (check its place on the line and its measuring time)",
    "unknown_id": "weighings whose id matched no parcel within 30 s: the scale's ids must be the PLC's tracking "
                  "numbers (docs/equipment.md, Scale and dimensioner)",
}


@dataclass(frozen=True)
class Weighing:
    tracking: int
    weight_kg: float
    dims_mm: tuple[float, float, float] | None   # length, width, height
    mono: float

    @property
    def volume_l(self) -> float | None:
        if self.dims_mm is None:
            return None
        length, width, height = self.dims_mm
        return length * width * height / 1e6

    @property
    def longest_mm(self) -> float | None:
        return None if self.dims_mm is None else max(self.dims_mm)


class LineFormat:
    """One line of text into a Weighing's fields; a Problem when it cannot be used."""

    def __init__(self, fields: str, separator: str, weight_unit: str, max_weight_kg: float, max_side_mm: float):
        self.fields = fields_of(fields)
        self.separator = separator
        self.unit_kg = 1.0 if weight_unit == "kg" else 0.001
        self.max_weight_kg = max_weight_kg
        self.max_side_mm = max_side_mm

    @classmethod
    def from_config(cls, scale: dict) -> LineFormat:
        return cls(scale["fields"], scale["separator"], scale["weight_unit"], scale["max_weight_kg"],
                   scale["max_side_mm"])

    def parse(self, frame: bytes) -> tuple[int, float, tuple[float, float, float] | None] | Problem:
        try:
            text = frame.decode("ascii").strip()
        except UnicodeDecodeError:
            return Problem("garbage", f"not text: {shown(frame)}")
        parts = [p.strip() for p in text.split(self.separator)] if self.separator.strip() else text.split()
        values = dict(zip(self.fields, parts))
        needed = [f for f in self.fields if f not in ("length", "width", "height")]
        if len(parts) > len(self.fields) or any(f not in values for f in needed):
            return Problem("garbage", f"{len(parts)} fields where [scale] fields names {len(self.fields)} "
                                      f"({','.join(self.fields)}): {shown(text)}")
        if not values["id"].isdigit() or len(values["id"]) > 10:
            return Problem("garbage", f"the id {values['id']!r} is not a tracking number: {shown(text)}")
        m = _NUMBER.match(values["weight"])
        if m is None:
            return Problem("garbage", f"the weight {values['weight']!r} is not a number (kg or g): {shown(text)}")
        weight_kg = float(m.group(1)) * (self.unit_kg if m.group(2) is None else
                                         1.0 if m.group(2).lower() == "kg" else 0.001)
        if weight_kg < 0:
            return Problem("negative", f"parcel {values['id']} weighed {weight_kg:g} kg: {shown(text)}")
        if weight_kg > self.max_weight_kg:
            return Problem("absurd", f"parcel {values['id']} weighed {weight_kg:g} kg, more than [scale] "
                                     f"max_weight_kg = {self.max_weight_kg:g}: {shown(text)}")
        sides = [values.get(f) for f in ("length", "width", "height")]
        if all(s is None or s == "" for s in sides):
            return int(values["id"]), weight_kg, None
        try:
            dims = tuple(float(s) for s in sides if s is not None)
        except ValueError:
            return Problem("garbage", f"the sides {sides} are not numbers (mm): {shown(text)}")
        if len(dims) != 3:
            return Problem("garbage", f"{len(dims)} of 3 sides (length, width, height): {shown(text)}")
        if any(not 1 <= side <= self.max_side_mm for side in dims):
            return Problem("absurd", f"parcel {values['id']} measured {'x'.join(f'{s:g}' for s in dims)} mm, a "
                                     f"side outside 1 to {self.max_side_mm:g} mm: {shown(text)}")
        return int(values["id"]), weight_kg, (dims[0], dims[1], dims[2])


def fields_of(text: str) -> tuple[str, ...]:
    """`"id,weight,length,width,height"` as a tuple; ValueError names what is wrong."""
    fields = tuple(f.strip() for f in text.split(","))
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise ValueError(f"{', '.join(unknown)} not a field: name id, weight, length, width, height and skip")
    for name in ("id", "weight"):
        if fields.count(name) != 1:
            raise ValueError(f"{name} is named {fields.count(name)} times: exactly once")
    sides = [f for f in fields if f in ("length", "width", "height")]
    if sides and sorted(sides) != ["height", "length", "width"]:
        raise ValueError("name all three of length, width and height, or none")
    return fields


class Scale(TcpInput):
    name = "scale"
    section = "scale"
    link_alarm = "scale_link"
    input_alarm = "scale_input"
    frames_are = "weighings"
    without_link = "parcels are decided without their weight (no overweight or oversize rule applies)"
    without_input = "those parcels are decided without their weight"
    remedies = REMEDIES

    def __init__(self, scale: dict, alarms: Alarms | None = None):
        super().__init__(scale, alarms)
        self.format = LineFormat.from_config(scale)
        self._waiting: collections.OrderedDict[int, Weighing] = collections.OrderedDict()
        self._decided: collections.OrderedDict[int, None] = collections.OrderedDict()   # decided without a weighing

    # -- the parcel's side ------------------------------------------------------------------------
    def weighing_for(self, tracking: int) -> Weighing | None:
        """The parcel's weighing if it came before now; never waited for."""
        weighing = self._waiting.pop(tracking, None)
        if weighing is None:
            self._decided[tracking] = None
            if len(self._decided) > KEPT:
                self._decided.popitem(last=False)
        self.counts["parcels"] += 1
        self.counts["weighed" if weighing is not None else "not_weighed"] += 1
        return weighing

    # -- lines ----------------------------------------------------------------------------------------
    def _frames(self, items: list) -> None:
        now = asyncio.get_running_loop().time()
        for item in items:
            parsed = item if isinstance(item, Problem) else self.format.parse(item)
            if isinstance(parsed, Problem):
                self._problem(parsed)
                continue
            tracking, weight_kg, dims = parsed
            self.counts["weighings"] += 1
            if self._decided.pop(tracking, 0) is None:
                self._problem(Problem("late", f"the weighing of parcel {tracking} ({weight_kg:g} kg) came after its "
                                              f"decision; it was decided without its weight"))
                continue
            self._waiting.pop(tracking, None)
            self._waiting[tracking] = Weighing(tracking, weight_kg, dims, now)
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._waiting:
            oldest = next(iter(self._waiting.values()))
            if len(self._waiting) <= KEPT and now - oldest.mono <= KEPT_S:
                break
            del self._waiting[oldest.tracking]
            self._problem(Problem("unknown_id", f"the weighing of id {oldest.tracking} ({oldest.weight_kg:g} kg) "
                                                f"found no parcel"))

    # -- alarms -------------------------------------------------------------------------------------
    def _check(self, now: float) -> None:
        self._expire(now)


def open_scale(config, alarms: Alarms) -> Scale | None:
    """The line's scale, or None when [scale] mode is "off"."""
    scale = config["scale"]
    return None if scale["mode"] == "off" else Scale(scale, alarms)
