"""What is printed on a synthetic label."""
from __future__ import annotations

from dataclasses import dataclass

from vision.waybill import COURIERS, random_waybill


@dataclass(frozen=True)
class LabelTruth:
    courier: str
    waybill: str
    routing_code: str


# The segment lengths random_routing_code prints: what a line's sort plan would tell its readers.
ROUTING_SHAPES = frozenset({(3, 3, 2), (3, 3, 2, 2)})


LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def random_routing_code(rng, courier: str = "SF", letters: str = LETTERS) -> str:
    """A 三段码 like 571-J25-03 (EMS prints a fourth segment); the outlet's letter from `letters`."""
    hub = f"{int(rng.integers(10, 1000)):03d}"
    letter = letters[int(rng.integers(0, len(letters)))]
    outlet = f"{letter}{int(rng.integers(0, 100)):02d}" if rng.random() < 0.7 else f"{int(rng.integers(0, 1000)):03d}"
    route = f"{int(rng.integers(0, 100)):02d}"
    code = f"{hub}-{outlet}-{route}"
    if courier == "EMS":
        code += f"-{int(rng.integers(0, 100)):02d}"
    return code


def random_truth(rng, routing_codes=None, couriers=None) -> LabelTruth:
    """A random label content; `routing_codes`/`couriers` restrict the choice when given."""
    pool = tuple(couriers) if couriers else COURIERS
    unknown = [c for c in pool if c not in COURIERS]
    if unknown:
        raise ValueError(f"unknown courier(s) {unknown}; known: {', '.join(COURIERS)}")
    courier = pool[int(rng.integers(0, len(pool)))]
    if routing_codes:
        routing = str(routing_codes[int(rng.integers(0, len(routing_codes)))])
    else:
        routing = random_routing_code(rng, courier)
    return LabelTruth(courier, random_waybill(rng, courier), routing)
