"""Plans built in a child process: the same Plan and the same errors as built here, pieces small
enough for the event loop, and a build that is given up or dies does not linger."""
import asyncio
import os
import pickle
import random
import signal
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastpath import PlanError, Router, load_plan, offloop_build, plan_build_process, plan_pieces
from fastpath.bench import data as bench_data
from fastpath.plan_file import read_plan_file
from fastpath.samples import courier_formats_of, waybill_from_masks
from tests.fastpath.conftest import SHIPPED_PLAN, SMALL_PLAN
from tests.fastpath.test_differential import events, plans

PUBLIC = ("version", "name", "n_chutes", "special", "couriers", "destinations", "routing_codes", "routing_shapes",
          "warnings", "preadvice_count")
PRE_PLAN = SMALL_PLAN + '[preadvice]\nfiles = ["pre.csv"]\n'
# Records that fit the 64-bit code, one that does not (the slow dict), a correction, odd spacing.
PRE_CSV = ("waybill,destination\nSF1234567890123,A\n 7312345678901 , B\nSF1234567890123,C\n"
           "SF-ODD-NUMBER-1,C\nJDX123456789012,B\n")


def _child_pids():
    """Build processes this test process started and that still run."""
    found = []
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
        except FileNotFoundError:
            continue
    return [p for p in found if _is_build(p)]


def _is_build(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"fastpath.plan_build_child" in f.read()
    except FileNotFoundError:
        return False


def _sample_parcels(plan, n=300, seed=3):
    rng = random.Random(seed)
    formats = courier_formats_of(read_plan_file(plan.path, plan.n_chutes))
    codes = plan.routing_codes
    parcels = []
    for i in range(n):
        reads = [waybill_from_masks(rng, rng.choice(formats)[1])] if i % 7 else []
        parcels.append((reads, rng.choice(codes + [None, "999-X"])))
    return parcels


def _memfd_mappings():
    with open("/proc/self/maps") as f:
        return [line for line in f if "sortline-plan" in line]


def test_the_tables_of_a_plan_built_apart_go_with_the_plan(tmp_path):
    path = tmp_path / "p.plan.toml"
    path.write_text(PRE_PLAN, encoding="utf-8")
    (tmp_path / "pre.csv").write_text(PRE_CSV, encoding="utf-8")
    before = len(_memfd_mappings())
    router = Router(plan_build_process.load(path, 10))
    assert len(_memfd_mappings()) == before + 1
    assert router.decide(["SF1234567890123"], None).destination == "C"
    router.swap(load_plan(path, 10))
    deadline = time.monotonic() + 5
    while len(_memfd_mappings()) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(_memfd_mappings()) == before


def _same_plan(apart, here):
    assert {k: getattr(apart, k) for k in PUBLIC} == {k: getattr(here, k) for k in PUBLIC}
    assert str(apart.path) == str(here.path)
    assert apart.preadvice.slow == here.preadvice.slow
    assert np.array_equal(apart.preadvice.table.keys, here.preadvice.table.keys)
    assert np.array_equal(apart.preadvice.table.values, here.preadvice.table.values)


@pytest.mark.parametrize("tables", ["mapped", "copied"])
@pytest.mark.parametrize("case", ["shipped", "pre-advice", "2,000 rules"])
def test_a_plan_built_apart_is_the_plan_built_here(case, tables, tmp_path, pure, monkeypatch):
    if tables == "copied":
        monkeypatch.setattr(plan_build_process, "COPY_MIN_BYTES", 0)
    if case == "shipped":
        path, n_chutes = SHIPPED_PLAN, 24
    elif case == "pre-advice":
        path, n_chutes = tmp_path / "p.plan.toml", 10
        path.write_text(PRE_PLAN, encoding="utf-8")
        (tmp_path / "pre.csv").write_text(PRE_CSV, encoding="utf-8")
    else:
        path, n_chutes = tmp_path / "b.plan.toml", 80
        path.write_text(bench_data.make_plan_text(80, 2000, 200)[0], encoding="utf-8")
    apart, here = plan_build_process.load(path, n_chutes), load_plan(path, n_chutes)
    assert apart.built_by_pid != os.getpid() and here.built_by_pid == os.getpid()
    _same_plan(apart, here)
    a, h = Router(apart, pure=pure), Router(here, pure=pure)
    for reads, code in _sample_parcels(here):
        assert a.decide(reads, code) == h.decide(reads, code)


BROKEN = {
    "not TOML": ("[plan\nversion = 1\n", None),
    "bad chute": (SMALL_PLAN.replace("chutes = [3]", "chutes = [33]"), None),
    "bad record": (PRE_PLAN, "SF1234567890123,A\nSF1234567890124,Nowhere\n"),
    "missing pre-advice": (PRE_PLAN, False),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_errors_from_apart_are_the_errors_from_here(case, tmp_path):
    text, csv = BROKEN[case]
    path = tmp_path / "x.plan.toml"
    path.write_text(text, encoding="utf-8")
    if csv:
        (tmp_path / "pre.csv").write_text(csv, encoding="utf-8")
    with pytest.raises(PlanError) as here:
        load_plan(path, 10)
    with pytest.raises(PlanError) as apart:
        plan_build_process.load(path, 10)
    assert str(apart.value) == str(here.value)
    assert vars(apart.value) == vars(here.value)


def test_a_missing_plan_and_a_wrong_chute_count_are_refused_alike(tmp_path):
    for args in ((tmp_path / "none.plan.toml", 10), (SHIPPED_PLAN, True), (SHIPPED_PLAN, 0)):
        messages = []
        for load in (load_plan, plan_build_process.load):
            with pytest.raises(PlanError) as err:
                load(*args)
            messages.append(str(err.value))
        assert messages[0] == messages[1]


async def test_a_reload_builds_in_a_child_process_and_a_plain_load_here(write_plan):
    router = Router(load_plan(write_plan(SMALL_PLAN), 10))
    assert router.plan.built_by_pid == os.getpid()
    plan = await router.reload(write_plan(SMALL_PLAN.replace('"t1"', '"t2"'), name="v2.plan.toml"), timeout_s=60)
    assert plan.version == "t2" and plan.built_by_pid != os.getpid()
    assert _child_pids() == []


async def test_a_build_loads_in_a_child_process_only_through_the_loader_it_is_given(write_plan):
    router = Router(load_plan(write_plan(SMALL_PLAN), 10))
    path = write_plan(SMALL_PLAN.replace('"t1"', '"t2"'), name="v2.plan.toml")
    plan = await router.build_and_swap(lambda load: load(path, 10))
    assert plan.built_by_pid != os.getpid()
    plan = await router.build_and_swap(lambda load: load_plan(path, 10))
    assert plan.built_by_pid == os.getpid() and router.plan is plan


@pytest.fixture(scope="module")
def big_plan(tmp_path_factory):
    """A plan with 300,000 pre-advice records: its build takes about a second."""
    folder = tmp_path_factory.mktemp("big")
    text = bench_data.plan_text_with_preadvice(bench_data.make_plan_text(80, 200, 20)[0], "big.csv")
    (folder / "big.plan.toml").write_text(text, encoding="utf-8")
    work = bench_data.make_workload(5, 80, 200, 300_000, n_destinations=20)
    bench_data.write_csv(folder / "big.csv", work.keys, work.destinations)
    small = bench_data.make_plan_text(80, 10, 20)[0].replace('version = "bench"', 'version = "small"')
    (folder / "small.plan.toml").write_text(small, encoding="utf-8")
    return folder / "big.plan.toml"


async def test_a_reload_given_up_stops_its_build_process(big_plan):
    router = Router(load_plan(big_plan.with_name("small.plan.toml"), 80))
    with pytest.raises(TimeoutError):
        await router.reload(big_plan, timeout_s=0.05)
    assert router.plan.version == "small"
    deadline = time.monotonic() + 5
    while _child_pids() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _child_pids() == []


def test_a_build_process_that_dies_is_reported(big_plan):
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_catch(lambda: plan_build_process.load(big_plan, 80))))
    worker.start()
    deadline = time.monotonic() + 30
    while not _child_pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in _child_pids():
        os.kill(pid, signal.SIGKILL)
    worker.join(60)
    assert isinstance(outcome[0], RuntimeError), outcome
    assert str(outcome[0]) == ("the plan build process was killed by signal 9 before sending the plan (out of "
                               "memory?); the plan was not loaded. Its error output is in the controller's log")


def _catch(call):
    try:
        return call()
    except Exception as exc:
        return exc


async def test_the_steps_of_a_build_beside_the_loop_run_on_the_loop():
    loop_thread = threading.get_ident()
    ran = []

    def steps():
        for _ in range(50):
            ran.append(threading.get_ident())
            time.sleep(0.00005)
            yield
    build = offloop_build.OffLoopBuild(asyncio.get_running_loop())
    await asyncio.to_thread(build.run_steps, steps())
    assert ran and set(ran) == {loop_thread} and build.slices > 1
    build.run_steps(steps())                # called on the loop itself: run at once
    assert len(ran) == 100


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_plan_put_back_together_from_small_pieces_decides_alike(data, tmp_path_factory):
    n_chutes, text, csv, known_codes, waybills = data.draw(plans())
    stream = data.draw(events(known_codes, waybills))
    folder = tmp_path_factory.mktemp("pieces")
    (folder / "r.plan.toml").write_text(text, encoding="utf-8")
    (folder / "pre.csv").write_text(csv, encoding="utf-8")
    plan = load_plan(folder / "r.plan.toml", n_chutes)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(plan_pieces, "PIECE_BYTES", 40)        # every list and dict in chunks
        monkeypatch.setattr(plan_pieces, "OUT_OF_BAND_MIN_BYTES", 1)
        pieces, buffers = plan_pieces.pack(plan)
    assert any(p.how != "set" for p in pieces) and buffers
    copy, steps = plan_pieces.unpack(pieces, [bytearray(b.raw()) for b in buffers])
    for _ in steps:
        pass
    routers = [(Router(plan, pure=p), Router(copy, pure=p)) for p in (True, False)]
    for event in stream:
        if event[0] == "state":
            _, chute, enabled, full, faulted = event
            if chute <= n_chutes:
                for pair in routers:
                    for router in pair:
                        router.set_chute_state(chute, enabled=enabled, full=full, faulted=faulted)
        else:
            _, labels, code = event
            for original, rebuilt in routers:
                assert rebuilt.decide(labels, code) == original.decide(labels, code)


def test_pieces_of_a_big_plan_stay_small(tmp_path):
    path = tmp_path / "b.plan.toml"
    path.write_text(bench_data.make_plan_text(80, 2000, 200)[0], encoding="utf-8")
    plan = load_plan(path, 80)
    plan.preadvice.slow.update({f"ODD-{i}".encode(): 1 + i % 200 for i in range(20_000)})
    pieces, buffers = plan_pieces.pack(plan)
    # The flat tables are a few small arrays, copied whole when unpickled: cheap at any size.
    assert max(len(p.data) for p in pieces if p.path != ("flat",)) <= 1.2 * plan_pieces.PIECE_BYTES
    copy, steps = plan_pieces.unpack(pieces, [bytearray(b.raw()) for b in buffers])
    n_steps = sum(1 for _ in steps)
    assert n_steps == len(pieces) + len(plan.courier_table.entries)
    assert copy.preadvice.slow == plan.preadvice.slow and copy.routing_codes == plan.routing_codes
    assert pickle.dumps(copy.exact_routes) == pickle.dumps(plan.exact_routes)
