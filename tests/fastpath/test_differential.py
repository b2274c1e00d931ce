"""The compiled core and the pure-Python reference decide alike on random plans and labels.

Each example writes a random plan and pre-advice file, loads it once with the compiled
loader and once with the Python one, then feeds both routers the same stream of chute-state
changes and parcels (real-looking waybills, garbage, non-ASCII, empty reads, odd routing
codes) and compares every decision and a batch of the same parcels.
"""
import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastpath import Router, load_plan

FORMATS = ["SF#{3}", "[AB]#{2}", "#{4}", "@@#{2}@@", "9#{2}", "JD[XK]#", "#{18}", "A-#"]
SEGMENTS = ["1", "2", "12", "A", "B", "J25", "571", "0"]
READS = ["SF123", "sf123", "A12", "B99", "1234", "9123", "AB12CD", "JDX1", "JDK9", "A-1", "123456789012345678",
         "1234567890123456789", "SF1234567890123", "RR123456785CN", "ÄÖ", "东关村", "\ud800", "", " ", "\t",
         " SF123 ", "a-1"]
CODES = ["571-J25-03", "571-J25-3", "571 j25 03", "1-2", "12", "A", "A-B-1", "571-J25", "571-J25-07-01",
         "571/J25", "--", "", " 1 - 2 ", "ÄÖ-1", "1-2-3-4-5-6-7", "AAAAAAAAAAAA-1", "\ud800", "0-0-0"]


@st.composite
def plans(draw):
    n_chutes = draw(st.integers(6, 14))
    chute = st.integers(1, n_chutes)
    special = {k: draw(chute) for k in ("no_read", "multi_read", "no_rule", "overflow", "reject")}
    free = [c for c in range(1, n_chutes + 1) if c not in special.values()]
    free_chutes = st.lists(st.sampled_from(free), min_size=1, max_size=3, unique=True)
    lines = ["[plan]", 'version = "p"', f'spread = "{draw(st.sampled_from(["round_robin", "first_available"]))}"',
             "[special]"] + [f"{k} = {v}" for k, v in special.items()]
    formats = draw(st.lists(st.sampled_from(FORMATS), max_size=len(FORMATS), unique=True))
    couriers = []
    for i in range(draw(st.integers(0, 3))):
        mine, formats = formats[:2], formats[2:]
        s10 = draw(st.booleans())
        if mine or s10:
            couriers.append(f"K{i}")
            lines += [f"[couriers.K{i}]", f"formats = {mine!r}".replace("'", '"'), f"s10 = {str(s10).lower()}"]
    destinations = [f"D{i}" for i in range(draw(st.integers(1, 4)))]
    for name in destinations:
        lines += [f"[destinations.{name}]", f"chutes = {draw(free_chutes)}",
                  f'spread = "{draw(st.sampled_from(["round_robin", "first_available"]))}"']
    seen = set()
    known_codes = []
    for _ in range(draw(st.integers(0, 8))):
        segments = draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3))
        kind = draw(st.sampled_from(["code", "prefix", "range"]))
        dest = draw(st.sampled_from(destinations))
        if kind == "range":
            low = draw(st.integers(0, 20))
            high = draw(st.integers(low, 25))
            parent = "-".join(segments[:-1])
            key = ("range", parent)
            if key in seen:
                continue
            ends = [f"{parent}-{low:02d}" if parent else f"{low:02d}", f"{parent}-{high}" if parent else f"{high}"]
            lines += ["[[routes]]", f'range = ["{ends[0]}", "{ends[1]}"]', f'destination = "{dest}"']
            known_codes += ends + [f"{parent}-{(low + high) // 2}", f"{parent}-{high + 1}", f"{parent} {low:03d}"]
        else:
            key = (kind, "-".join(segments))
            if key in seen:
                continue
            lines += ["[[routes]]", f'{kind} = "{key[1]}"', f'destination = "{dest}"']
            known_codes += [key[1], key[1] + "-7", key[1] + "-A-1", key[1].lower().replace("-", " ")]
        seen.add(key)
    for courier in couriers:
        if draw(st.booleans()):
            lines += ["[[courier_rules]]", f'courier = "{courier}"', f'destination = "{draw(st.sampled_from(destinations))}"']
        if draw(st.booleans()):
            scope = draw(st.lists(st.sampled_from(destinations), max_size=2, unique=True))
            lines += ["[[overrides]]", f'courier = "{courier}"', f"chutes = {draw(free_chutes)}",
                      f"destinations = {scope!r}".replace("'", '"')]
    pre = draw(st.lists(st.tuples(st.sampled_from([r for r in READS if r.strip() and "\ud800" not in r]),
                                  st.sampled_from(destinations)), max_size=12))
    lines += ["[preadvice]", 'files = ["pre.csv"]']
    csv = "\n".join(f"{w},{d}" for w, d in pre)
    return n_chutes, "\n".join(lines) + "\n", csv, known_codes, [w for w, _ in pre]


def events(known_codes, waybills):
    one = st.one_of(st.sampled_from(READS + waybills), st.text(max_size=20),
                    st.sampled_from(READS + waybills).map(lambda r: r.encode("utf-8", "surrogatepass")),
                    st.binary(max_size=8), st.sampled_from(READS).map(lambda r: bytearray(r.encode("utf-8", "surrogatepass"))))
    # the same waybill read twice, as the camera may give it: case, spaces, str or bytes
    variants = st.lists(st.sampled_from([str.lower, str.upper, lambda r: f" {r}\t", lambda r: r.encode("utf-8", "surrogatepass")]),
                        min_size=1, max_size=3)
    again = st.tuples(st.sampled_from(READS + waybills), variants, st.lists(one, max_size=1)).map(
        lambda t: [t[0]] + [f(t[0]) for f in t[1]] + t[2])
    reads = st.one_of(st.lists(one, max_size=4), again,
                      st.none(), st.sampled_from(READS), st.tuples(st.sampled_from(waybills or READS)))
    codes = st.one_of(st.none(), st.sampled_from(CODES + known_codes), st.text(max_size=16))
    return st.lists(st.one_of(
        st.tuples(st.just("state"), st.integers(1, 14), st.booleans(), st.booleans(), st.booleans()),
        st.tuples(st.just("parcel"), reads, codes)), min_size=1, max_size=40)


def _load_both(n_chutes, text, csv, monkeypatch):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.plan.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        with open(os.path.join(tmp, "pre.csv"), "w", encoding="utf-8") as f:
            f.write(csv)
        loaded = []
        for pure in ("1", ""):
            monkeypatch.setenv("SORTLINE_PURE_PYTHON", pure)
            loaded.append(load_plan(path, n_chutes))
        return loaded


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_and_pure_decide_alike(data):
    n_chutes, text, csv, known_codes, waybills = data.draw(plans())
    stream = data.draw(events(known_codes, waybills))
    with pytest.MonkeyPatch.context() as monkeypatch:
        pure_plan, compiled_plan = _load_both(n_chutes, text, csv, monkeypatch)
    pure, compiled = Router(pure_plan, pure=True), Router(compiled_plan, pure=False)
    assert compiled.implementation == "compiled"
    batch_reads, batch_codes = [], []
    for event in stream:
        if event[0] == "state":
            _, chute, enabled, full, faulted = event
            if chute <= n_chutes:
                for router in (pure, compiled):
                    router.set_chute_state(chute, enabled=enabled, full=full, faulted=faulted)
        else:
            _, labels, code = event
            assert compiled.decide(labels, code) == pure.decide(labels, code), (labels, code)
            batch_reads.append(labels)
            batch_codes.append(code)
    fresh_pure, fresh_compiled = Router(pure_plan, pure=True), Router(compiled_plan, pure=False)
    expected = [fresh_pure.decide(r, c) for r, c in zip(batch_reads, batch_codes)]
    assert fresh_compiled.decide_batch(batch_reads, batch_codes).decisions() == expected
    assert Router(pure_plan, pure=True).decide_batch(batch_reads, batch_codes).decisions() == expected
