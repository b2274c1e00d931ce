"""Chutes that fill as parcels land and empty as a worker takes parcels away.

Each side chute holds `capacity` parcels; a worker empties it at `empty_per_min`. The full
sensor switches on when the chute reaches capacity and off again once it has drained to
`clear_ratio` of it (hysteresis, as a real level sensor with a delay does). The end chute feeds
a take-away conveyor and never fills. Tests and fault scripts can also force a sensor or a
diverter fault on or off; those are physical conditions, so a PLC restart keeps them.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class ChuteSettings:
    capacity: int | None = 60            # parcels a chute holds before its full sensor trips; None: no sensor
    empty_per_min: float = 60.0          # parcels per minute the worker at a chute takes away
    clear_ratio: float = 0.75            # the full sensor clears at this share of capacity

    def __post_init__(self):
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"chute capacity must be at least 1 parcel, got {self.capacity}")
        if self.empty_per_min < 0:
            raise ValueError(f"chute emptying rate must be 0 or more parcels per minute, got {self.empty_per_min}")
        if not 0 <= self.clear_ratio < 1:
            raise ValueError(f"clear_ratio must be from 0 to below 1, got {self.clear_ratio}")


class ChuteBank:
    def __init__(self, numbers, end_chute: int, settings: ChuteSettings = ChuteSettings()):
        self.settings = settings
        self.end_chute = end_chute
        self._level = {n: 0.0 for n in numbers if n != end_chute}
        self._level_at_s = {n: 0.0 for n in self._level}
        self._sensor = {n: False for n in self._level}
        self.forced_full: dict[int, bool] = {}
        self.faulted: set[int] = set()
        self.landed = {n: 0 for n in numbers}

    def level(self, chute: int, now_s: float) -> float:
        if chute not in self._level:
            return 0.0
        drained = (now_s - self._level_at_s[chute]) * self.settings.empty_per_min / 60.0
        return max(0.0, self._level[chute] - drained)

    def land(self, chute: int, now_s: float) -> None:
        self.landed[chute] = self.landed.get(chute, 0) + 1
        if chute in self._level:
            self._level[chute] = self.level(chute, now_s) + 1
            self._level_at_s[chute] = now_s
            self._update_sensor(chute, now_s)

    def _update_sensor(self, chute: int, now_s: float) -> None:
        cap = self.settings.capacity
        if cap is None:
            return
        level = self.level(chute, now_s)
        if level >= cap:
            self._sensor[chute] = True
        elif level <= cap * self.settings.clear_ratio:
            self._sensor[chute] = False

    def full(self, now_s: float) -> set[int]:
        """Chutes whose full sensor is on now (a forced state wins over the level)."""
        result = set()
        for chute in self._level:
            self._update_sensor(chute, now_s)
            on = self.forced_full.get(chute, self._sensor[chute])
            if on:
                result.add(chute)
        return result

    def force_full(self, chute: int, on: bool | None) -> None:
        """Force the full sensor on or off; None hands it back to the fill level."""
        if on is None:
            self.forced_full.pop(chute, None)
        else:
            self.forced_full[chute] = on

    def set_fault(self, chute: int, on: bool) -> None:
        (self.faulted.add if on else self.faulted.discard)(chute)
