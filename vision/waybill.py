"""Is a decoded or printed text a waybill number, and whose?

Two questions, kept apart:
- *is it a waybill*: its shape is a courier's in the default rule set (fastpath/default_couriers.toml,
  real couriers' numbers, each shape with its public source), or one of the shapes several couriers
  share (12 digits without prefix), or one of the line's plan formats;
- *which courier*: the line's plan when one is loaded (its couriers first, then the defaults it
  keeps), else the default rule set; None for a shared shape.

A barcode or printed number of no shape is not a waybill (parcels carry other Code 128 symbols:
order numbers, product codes): the reader reports it as "unknown_format" so that a technician can
add the courier's rule to the plan. A number found in the pre-advice is a waybill whatever its
shape: vision.result.with_preadvised. Routing codes: vision/routing_code.py.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

# Couriers the synthetic label generator draws (vision/synth has their names and logos); their
# numbers are drawn from the same default rules the reader checks them by.
COURIERS = ("SF", "YTO", "JT", "JD", "ZTO", "Yunda", "STO", "EMS")

S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
S10_SERVICES = ("EE", "EA", "RR", "CP", "LX", "EV")

MAX_WAYBILL_LEN = 20
GENERATED_LENGTHS = (13, 15)
NO_FORMAT = "matches no courier format"


def s10_check_digit(serial8: str) -> int:
    """UPU S10 check digit of the 8-digit serial number (weights 86423597, mod 11)."""
    total = sum(int(d) * w for d, w in zip(serial8, S10_WEIGHTS))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


@dataclass(frozen=True)
class WaybillCheck:
    valid: bool
    courier: str | None     # None for a valid number of a shape several couriers share
    reason: str | None


@functools.lru_cache(maxsize=1)
def _default_tables():
    from fastpath import couriers
    return couriers.default_table(), couriers.shared_table()


def _canon(text: str) -> bytes:
    return text.encode("ascii")


def _default_courier(text: str) -> str | None:
    table, _ = _default_tables()
    index = table.detect(_canon(text))
    return table.names[index - 1] if index else None


def _shared_shape(text: str) -> bool:
    return _default_tables()[1].detect(_canon(text)) > 0


# The line's sort plan tells couriers when the reader runs beside a line (edge/readers.py): its
# own couriers first, then the defaults it keeps. None: the default rule set alone.
_plan_courier_of = None


def use_plan_formats(courier_of_plan) -> None:
    """Tell couriers by `courier_of_plan(text) -> courier name | None` (None: the default rules)."""
    global _plan_courier_of
    _plan_courier_of = courier_of_plan


def check_waybill(text: str) -> WaybillCheck:
    """Which courier a waybill number belongs to, or why it is not a waybill number."""
    if not isinstance(text, str) or not text:
        return WaybillCheck(False, None, "empty")
    if len(text) > MAX_WAYBILL_LEN:
        return WaybillCheck(False, None, "too long")
    if not text.isascii() or not text.isalnum():
        return WaybillCheck(False, None, "characters outside A-Z 0-9")
    if _plan_courier_of is not None:
        courier = _plan_courier_of(text)
        if courier:
            return WaybillCheck(True, courier, None)
    default = _default_courier(text)
    if default or _shared_shape(text):
        # A plan that keeps none of the defaults still reads their numbers as waybills: which
        # courier they belong to is the plan's word, whether they are waybills is not.
        return WaybillCheck(True, None if _plan_courier_of is not None else default, None)
    if text[:2].isalpha() and text[-2:].isalpha() and len(text) == 13 and text[2:11].isdigit():
        return WaybillCheck(False, None, "S10 check digit wrong")
    return WaybillCheck(False, None, NO_FORMAT)


def courier_of(text: str) -> str | None:
    return check_waybill(text).courier


def random_waybill(rng, courier: str) -> str:
    """A random waybill number in the format of `courier` (rng: numpy.random.Generator), drawn from
    the default rules: one of the courier's formats, each position from the characters it allows,
    drawn again until the number names this courier (a shape may be a courier's that comes first)."""
    from fastpath import couriers
    known = {c.name: c for c in couriers.default_rules()[0]}
    if courier not in known or courier not in COURIERS:
        raise ValueError(f"unknown courier {courier!r}; known: {', '.join(COURIERS)}")
    rule = known[courier]
    # The label layouts and the text model are made for numbers of 13 to 15 characters; the
    # rules' 10- and 18-character shapes are checked by the tests instead.
    choices = [m for m in rule.masks if GENERATED_LENGTHS[0] <= len(m) <= GENERATED_LENGTHS[1]]
    choices += [couriers.S10_MASKS] if rule.s10 else []
    for _ in range(1000):
        masks = choices[int(rng.integers(0, len(choices)))]
        number = _draw(rng, masks)
        if masks is couriers.S10_MASKS:
            # As China Post prints them: a service indicator in use, country CN.
            service = S10_SERVICES[int(rng.integers(0, len(S10_SERVICES)))]
            number = f"{service}{number[2:10]}{s10_check_digit(number[2:10])}CN"
        if _default_courier(number) == courier:
            return number
    raise ValueError(f"the default rules give no number of {courier!r} its own: check fastpath/default_couriers.toml")


_CLASS_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"


def _draw(rng, masks) -> str:
    out = []
    for mask in masks:
        allowed = [ch for bit, ch in enumerate(_CLASS_CHARS) if mask >> bit & 1]
        out.append(allowed[int(rng.integers(0, len(allowed)))])
    return "".join(out)
