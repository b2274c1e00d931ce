"""Conveyor geometry and the times derived from it (all host times in seconds, monotonic)."""
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
    def decision_after_scan_s(self) -> float:
        """How long after the scan the PLC still takes an assignment for a parcel."""
        return self.first_divert_m / self.belt_speed_m_s - self.switch_time_s - self.plc_margin_s

    def arrival_after_scan_s(self, chute: int) -> float:
        return self.chute(chute).position_m / self.belt_speed_m_s
