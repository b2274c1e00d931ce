"""A replaced plan is freed on the loop in slices, and only what nobody else uses is taken apart."""
import asyncio

from fastpath import load_plan
from fastpath.plan import RETIRE_STEP_ENTRIES, retire

ROUTES = 10 * RETIRE_STEP_ENTRIES


def big_plan(tmp_path):
    rules = "".join(f'[[routes]]\ncode = "9{n // 1000:02d}-K{n % 1000:03d}-01"\ndestination = "A"\n'
                    for n in range(ROUTES))
    path = tmp_path / "big.plan.toml"
    path.write_text('[plan]\nversion = "big"\n[special]\nno_read = 10\nmulti_read = 10\nno_rule = 9\n'
                    'overflow = 8\nreject = 10\n[destinations.A]\nchutes = [1]\n' + rules, encoding="utf-8")
    return load_plan(path, n_chutes=10)


async def turns_until(done):
    """Loop turns until done(); a slice of the retirement runs in some of them."""
    turns = 0
    async with asyncio.timeout(10):
        while not done():
            await asyncio.sleep(0)
            turns += 1
    return turns


async def test_a_plan_nobody_holds_is_emptied_a_step_at_a_time(tmp_path):
    plan = big_plan(tmp_path)
    codes, exact = plan.routing_codes, plan.exact_routes      # to watch them: held here, they stay whole
    assert len(codes) == len(exact) == ROUTES
    del codes, exact
    seen = plan.__dict__                                     # the attributes, not the plan
    retire(plan, asyncio.get_running_loop())
    del plan
    turns = await turns_until(lambda: not seen["routing_codes"] and not seen["exact_routes"])
    assert seen["routing_codes"] == [] and seen["exact_routes"] == {}
    assert turns > 1                     # not all at once


async def test_a_plan_still_held_elsewhere_is_left_whole(tmp_path):
    plan = big_plan(tmp_path)
    kept = plan
    retire(plan, asyncio.get_running_loop())
    del plan
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(kept.routing_codes) == len(kept.exact_routes) == ROUTES


async def test_a_table_still_held_elsewhere_is_left_whole(tmp_path):
    plan = big_plan(tmp_path)
    exact = plan.exact_routes
    seen = plan.__dict__
    retire(plan, asyncio.get_running_loop())
    del plan
    await turns_until(lambda: not seen["routing_codes"])
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(exact) == ROUTES
