"""Reloading a plan beside a running line: built in a thread, swapped between two decisions."""
import asyncio

import pytest

from fastpath import PlanError, Reason, Router, load_plan
from tests.fastpath.conftest import SMALL_PLAN

V2 = SMALL_PLAN.replace('version = "t1"', 'version = "t2"').replace(
    'code = "571-J25-03"\ndestination = "B"', 'code = "571-J25-03"\ndestination = "C"')


async def test_decisions_go_on_during_a_reload_and_switch_to_the_new_plan(write_plan, pure):
    router = Router(load_plan(write_plan(SMALL_PLAN), 10), pure=pure)
    new_path = write_plan(V2, name="v2.plan.toml")
    seen = []

    async def decide_all_the_time():
        while True:
            d = router.decide([], "571-J25-03")
            seen.append((router.plan.version, d.destination))
            await asyncio.sleep(0)

    worker = asyncio.create_task(decide_all_the_time())
    try:
        plan = await router.reload(new_path, timeout_s=30)
        await asyncio.sleep(0.01)
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(worker, 5)
    assert plan.version == "t2" and router.plan is plan
    assert set(seen) == {("t1", "B"), ("t2", "C")}
    assert seen.index(("t2", "C")) > 0
    assert all(v == "t2" for v, _ in seen[seen.index(("t2", "C")):])


async def test_a_bad_plan_keeps_the_live_one(write_plan, pure):
    router = Router(load_plan(write_plan(SMALL_PLAN), 10), pure=pure)
    router.set_chute_state(3, full=True)
    bad = write_plan(SMALL_PLAN.replace("chutes = [3]", "chutes = [33]"), name="bad.plan.toml")
    with pytest.raises(PlanError, match=r"bad\.plan\.toml:20: \[destinations\.\"B\"\] chutes = 33"):
        await router.reload(bad, timeout_s=30)
    assert router.plan.version == "t1"
    assert router.chute_state(3)["full"]
    assert router.decide([], "571-J25-03") == (8, Reason.OVERFLOW, None, "B")


def test_swap_refuses_a_plan_for_another_line(write_plan, pure):
    router = Router(load_plan(write_plan(SMALL_PLAN), 10), pure=pure)
    other = load_plan(write_plan(SMALL_PLAN, name="o.plan.toml"), 12)
    with pytest.raises(PlanError, match=r"the plan is for 12 chutes but the line has 10\. Load it with the line's"):
        router.swap(other)
    assert router.plan.n_chutes == 10
