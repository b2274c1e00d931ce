"""Waybill and routing-code formats per courier.

The patterns are community heuristics observed on real labels, not courier specifications. The
digit-only couriers (ZTO, Yunda, STO, EMS) overlap in length, so each is given the leading digits
seen on its labels; the prefixes are kept disjoint so that a valid number names one courier.
A barcode or printed number that matches no pattern is not a waybill (parcels carry other Code 128
symbols: order numbers, product codes) and is never reported as one. Routing codes: vision/routing_code.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

COURIERS = ("SF", "YTO", "JT", "JD", "ZTO", "Yunda", "STO", "EMS")

# Generator-side description: (prefix choices, number of random digits after the prefix).
_DIGIT_FORMATS: dict[str, tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]] = {
    "SF": ((("SF",), (13, 12)),),
    "YTO": ((("YT",), (13,)),),
    "JT": ((("JT",), (13,)),),
    "ZTO": ((("73", "75", "76", "78"), (10, 11, 12)),),
    "Yunda": ((("31", "43", "46"), (11, 13)),),
    "STO": ((("77", "88", "66", "55"), (10, 11, 12, 13)),),
    "EMS": ((("10", "11", "50", "51", "95", "97", "98", "99"), (11,)),),
}

_PATTERNS: dict[str, re.Pattern[str]] = {
    "SF": re.compile(r"SF\d{12,13}"),
    "YTO": re.compile(r"YT\d{13}"),
    "JT": re.compile(r"JT\d{13}"),
    "JD": re.compile(r"JD[XK]\d{12}|JDV[A-Z]\d{11}"),
    "ZTO": re.compile(r"7[3568]\d{10,12}"),
    "Yunda": re.compile(r"(?:31|43|46)(?:\d{11}|\d{13})"),
    "STO": re.compile(r"(?:77|88|66|55)\d{10,13}"),
    "EMS": re.compile(r"(?:10|11|50|51|95|97|98|99)\d{11}|[A-Z]{2}\d{9}[A-Z]{2}"),
}

S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)

MAX_WAYBILL_LEN = 20


def s10_check_digit(serial8: str) -> int:
    """UPU S10 check digit of the 8-digit serial number (weights 86423597, mod 11)."""
    total = sum(int(d) * w for d, w in zip(serial8, S10_WEIGHTS))
    check = 11 - total % 11
    return {10: 0, 11: 5}.get(check, check)


def _s10_valid(text: str) -> bool:
    return int(text[10]) == s10_check_digit(text[2:10])


@dataclass(frozen=True)
class WaybillCheck:
    valid: bool
    courier: str | None
    reason: str | None


# The line's sort plan defines courier formats too (technicians edit them); a number the plan
# knows is a waybill even where these built-in heuristics do not know it.
_plan_courier_of = None


def use_plan_formats(courier_of_plan) -> None:
    """Also accept numbers `courier_of_plan(text) -> courier name | None` recognises (None: stop)."""
    global _plan_courier_of
    _plan_courier_of = courier_of_plan


def check_waybill(text: str) -> WaybillCheck:
    """Which courier a waybill number belongs to, or why it is not a waybill number."""
    result = _check_builtin(text)
    if not result.valid and _plan_courier_of is not None and isinstance(text, str) \
            and 0 < len(text) <= MAX_WAYBILL_LEN and text.isascii() and text.isalnum():
        courier = _plan_courier_of(text)
        if courier:
            return WaybillCheck(True, courier, None)
    return result


def _check_builtin(text: str) -> WaybillCheck:
    if not isinstance(text, str) or not text:
        return WaybillCheck(False, None, "empty")
    if len(text) > MAX_WAYBILL_LEN:
        return WaybillCheck(False, None, "too long")
    if not text.isascii() or not text.isalnum():
        return WaybillCheck(False, None, "characters outside A-Z 0-9")
    for courier, pattern in _PATTERNS.items():
        if pattern.fullmatch(text):
            if courier == "EMS" and text[0].isalpha():
                if not _s10_valid(text):
                    return WaybillCheck(False, None, "S10 check digit wrong")
            return WaybillCheck(True, courier, None)
    return WaybillCheck(False, None, "matches no courier format")


def courier_of(text: str) -> str | None:
    return check_waybill(text).courier


def random_waybill(rng, courier: str) -> str:
    """A random waybill number in the format of `courier` (rng: numpy.random.Generator)."""
    def digits(n: int) -> str:
        return "".join(str(d) for d in rng.integers(0, 10, size=n))

    if courier == "JD":
        if rng.random() < 0.6:
            return "JD" + "XK"[int(rng.integers(0, 2))] + digits(12)
        return "JDV" + chr(ord("A") + int(rng.integers(0, 26))) + digits(11)
    if courier == "EMS" and rng.random() < 0.4:
        serial = digits(8)
        country = "CN"
        service = rng.choice(["EE", "EA", "RR", "CP", "LX", "EV"])
        return f"{service}{serial}{s10_check_digit(serial)}{country}"
    if courier not in _DIGIT_FORMATS:
        raise ValueError(f"unknown courier {courier!r}; known: {', '.join(COURIERS)}")
    (prefixes, lengths), = _DIGIT_FORMATS[courier]
    prefix = prefixes[int(rng.integers(0, len(prefixes)))]
    return prefix + digits(lengths[int(rng.integers(0, len(lengths)))])
