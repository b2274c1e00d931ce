"""Conveyor geometry and the positions and times derived from it: the decision point and the
deadlines the controller works to, and the same arithmetic the simulated PLC runs its belt by.

Positions are metres of belt travel after the scan photo-eye (`*_m`); times are seconds (`*_s`).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Chute:
    number: int
    position_m: float        # distance from the scan photo-eye along the belt
    side: str                # "left", "right" or "end"


@dataclass(frozen=True)
class LineGeometry:
    belt_speed_m_s: float
    switch_time_s: float
    plc_margin_s: float
    chutes: tuple[Chute, ...]
    end_chute: int
    encoder_mm_per_count: float = 1.0

    def chute(self, number: int) -> Chute | None:
        for c in self.chutes:
            if c.number == number:
                return c
        return None

    @property
    def first_divert_m(self) -> float:
        return min(c.position_m for c in self.chutes if c.side != "end")

    @property
    def end_m(self) -> float:
        return self.chute(self.end_chute).position_m

    @property
    def decision_after_scan_s(self) -> float:
        """How long after the scan the PLC still takes an assignment for a parcel."""
        return self.first_divert_m / self.belt_speed_m_s - self.switch_time_s - self.plc_margin_s

    @property
    def decision_m(self) -> float:
        """The decision point: belt travel after the scan at which the PLC commits a parcel."""
        return self.decision_after_scan_s * self.belt_speed_m_s

    def fire_m(self, chute: int) -> float:
        """Belt travel after the scan at which the diverter of `chute` starts to move."""
        return self.chute(chute).position_m - self.switch_time_s * self.belt_speed_m_s

    def arrival_after_scan_s(self, chute: int) -> float:
        return self.chute(chute).position_m / self.belt_speed_m_s

    def counts(self, travel_m: float) -> int:
        """Encoder counts for a belt travel, as the PLC's 32-bit counter shows them (wrapping)."""
        return int(travel_m * 1000.0 / self.encoder_mm_per_count) & 0xFFFFFFFF
