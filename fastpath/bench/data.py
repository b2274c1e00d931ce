"""Generated workload for the routing benchmark: a big plan, its pre-advice, a parcel stream.

Pre-advice records are made as 64-bit codes directly (numpy, no strings) in the shapes real
couriers use; only the parcels that are decided become strings.
"""
import dataclasses

import numpy as np

from .. import preadvice
from .. import waybill
from ..plan import Plan
from ..plan_file import read_plan_file

COURIERS = """
[couriers.EMS]
formats = ["1[01]#{11}", "5[01]#{11}", "9[5789]#{11}"]
s10 = true
[couriers.SF]
formats = ["SF#{13}", "SF#{12}"]
[couriers.YTO]
formats = ["YT#{13}"]
[couriers."J&T"]
formats = ["JT#{13}"]
[couriers.JD]
formats = ["JD[XK]#{12}", "JDV@#{11}"]
[couriers.STO]
formats = ["77#{10}", "77#{11}", "77#{12}", "77#{13}", "88#{10}", "88#{11}", "88#{12}", "66#{10}", "66#{11}"]
[couriers.ZTO]
formats = ["7[3-9]#{10}", "7[3-9]#{11}", "7[3-9]#{12}"]
[couriers.Yunda]
formats = ["[34]#{12}", "[34]#{14}"]
"""

# (share of records, letters, first digits choices, digits after them) -> realistic waybills
FAMILIES = [
    (0.22, "", ("3", "4"), 12),          # Yunda 13 digits
    (0.20, "", ("73", "75", "78"), 10),  # ZTO 12 digits
    (0.10, "", ("77", "88"), 11),        # STO 13 digits
    (0.08, "", ("10", "11", "50", "98"), 11),  # EMS 13 digits
    (0.14, "SF", ("",), 13),
    (0.10, "YT", ("",), 13),
    (0.10, "JT", ("",), 13),
    (0.06, "JDX", ("",), 12),
]
SPECIAL = {"overflow": 78, "no_rule": 79, "reject": 80}


@dataclasses.dataclass
class Workload:
    plan_text: str
    keys: np.ndarray            # pre-advice waybill codes
    destinations: np.ndarray
    known_codes: list           # routing codes that match a rule


def _letters_value(letters):
    value = 0
    for ch in letters:
        value = value * 26 + ord(ch) - 65
    return value


def make_codes(rng, n):
    """n waybill codes following FAMILIES (a few may repeat)."""
    shares = np.array([f[0] for f in FAMILIES])
    family = rng.choice(len(FAMILIES), size=n, p=shares / shares.sum())
    codes = np.zeros(n, np.int64)
    for index, (_, letters, heads, tail) in enumerate(FAMILIES):
        picked = np.flatnonzero(family == index)
        head = np.array([int(h) if h else 0 for h in heads], np.int64)[rng.integers(0, len(heads), len(picked))]
        digits = len(heads[0]) + tail
        value = head * 10 ** tail + rng.integers(0, 10 ** tail, len(picked), dtype=np.int64)
        base = waybill.SHAPE_OFFSETS[(len(letters) * 3) * 19 + digits]
        codes[picked] = base + _letters_value(letters) * 10 ** digits + value
    return codes


def make_plan_text(n_chutes, n_rules, n_destinations):
    lines = ['[plan]', 'version = "bench"', 'name = "generated benchmark plan"', '[special]',
             f'no_read = {SPECIAL["reject"]}', f'multi_read = {SPECIAL["reject"]}',
             f'no_rule = {SPECIAL["no_rule"]}', f'overflow = {SPECIAL["overflow"]}', f'reject = {SPECIAL["reject"]}',
             COURIERS]
    usable = SPECIAL["overflow"] - 2          # chute 77 is SF's own
    for d in range(n_destinations):
        chutes = sorted({1 + d % usable, 1 + (d * 7 + 3) % usable}) if d % 3 == 0 else [1 + d % usable]
        lines += [f'[destinations."D{d + 1:04d}"]', f"chutes = {chutes}"]
    known = []
    per_pair = 10
    for pair in range(n_rules // per_pair):
        parent = f"{311 + pair // 10}-J{pair % 10 + 1:02d}"
        dest = lambda k: f"D{(pair * per_pair + k) % n_destinations + 1:04d}"  # noqa: E731
        lines += ["[[routes]]", f'prefix = "{parent}"', f'destination = "{dest(0)}"']
        lines += ["[[routes]]", f'range = ["{parent}-01", "{parent}-09"]', f'destination = "{dest(1)}"']
        lines += ["[[routes]]", f'range = ["{parent}-10", "{parent}-19"]', f'destination = "{dest(2)}"']
        for route in range(20, 27):
            lines += ["[[routes]]", f'code = "{parent}-{route}"', f'destination = "{dest(route - 17)}"']
        known += [f"{parent}-{r:02d}" for r in (1, 5, 12, 19, 20, 23, 26, 31, 55)]
    lines += ["[[courier_rules]]", 'courier = "JD"', 'destination = "D0001"',
              "[[overrides]]", 'courier = "SF"', f"chutes = [{SPECIAL['overflow'] - 1}]"]
    return "\n".join(lines) + "\n", known


def make_workload(seed, n_chutes, n_rules, n_records, n_destinations=200):
    rng = np.random.default_rng(seed)
    text, known = make_plan_text(n_chutes, n_rules, n_destinations)
    keys = make_codes(rng, n_records)
    destinations = rng.integers(1, n_destinations + 1, n_records, dtype=np.uint16)
    return Workload(text, keys, destinations, known)


def write_csv(path, keys, destinations, chunk=1_000_000):
    """The records as a pre-advice file (letters-then-digits shapes only, as make_codes makes)."""
    starts = np.array([base for base, _, _, _ in waybill._SHAPE_STARTS], np.int64)
    shapes = waybill._SHAPE_STARTS
    prefixes = {}
    with open(path, "w", encoding="ascii") as out:
        out.write("waybill,destination\n")
        for at in range(0, len(keys), chunk):
            part = keys[at:at + chunk]
            which = np.searchsorted(starts, part, side="right") - 1
            lines = []
            for code, shape, dest in zip(part.tolist(), which.tolist(), destinations[at:at + chunk].tolist()):
                base, _, _, d = shapes[shape]
                letters, digits = divmod(code - base, 10 ** d)
                key = (shape, letters)
                if key not in prefixes:
                    prefixes[key] = waybill.decode(base + letters * 10 ** d).decode()[:-d]
                lines.append(f"{prefixes[key]}{digits:0{d}d},D{dest:04d}")
            out.write("\n".join(lines) + "\n")


def plan_text_with_preadvice(text, csv_name):
    return text + f'[preadvice]\nfiles = ["{csv_name}"]\n'


def build_plan(plan_path, n_chutes, keys, destinations):
    """What load_plan does, with pre-advice from generated codes instead of CSV files."""
    spec = read_plan_file(plan_path, n_chutes)
    return Plan(spec, preadvice.build(keys, destinations, {}, []))


def make_parcels(rng, workload, n):
    """[(reads, routing code)]: pre-advice hits, routing-code only, unknown, no-read, multi-read."""
    kind = rng.choice(5, size=n, p=[0.70, 0.15, 0.08, 0.065, 0.005])
    hits = workload.keys[rng.integers(0, len(workload.keys), n)]
    strangers = make_codes(rng, n)
    codes = workload.known_codes
    parcels = []
    for i in range(n):
        k = kind[i]
        code = codes[rng.integers(len(codes))] if rng.random() < 0.8 else None
        if k == 0:
            parcels.append(([waybill.decode(int(hits[i])).decode()], code))
        elif k == 1:
            parcels.append(([waybill.decode(int(strangers[i])).decode()], codes[rng.integers(len(codes))]))
        elif k == 2:
            unknown_code = "999-X01-01" if rng.random() < 0.5 else None
            parcels.append(([waybill.decode(int(strangers[i])).decode()], unknown_code))
        elif k == 3:
            parcels.append(([], code if rng.random() < 0.3 else None))
        else:
            parcels.append(([waybill.decode(int(hits[i])).decode(), waybill.decode(int(strangers[i])).decode()],
                            code))
    return parcels
