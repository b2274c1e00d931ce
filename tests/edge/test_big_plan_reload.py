"""A big sort plan saved while the line runs must not hold the event loop (the PLC heartbeat).

The simulated PLC runs in its own process and the controller here watches its plan file. While
parcels flow, a 50 MB plan (far above the 16 MB limit) is saved over the plan file, then one
just under the limit, then the small plan again (the big one is freed). A probe task sleeps
5 ms over and over and notes the longest time the loop was held beyond that: the heartbeat to
the PLC is sent from the same loop, and a loop held for a few hundred milliseconds makes the
PLC take the link for dead.

Run with -s to see the figures: `pytest -s tests/edge/test_big_plan_reload.py`.
"""
import asyncio
import os
import shutil
import threading
import time

import pytest

from fastpath import text_files
from tests.conftest import REPO
from tests.edge.shift_runner import private_copy, run_shift

pytestmark = pytest.mark.timeout(600)

PROBE_SLEEP_S = 0.005
HELD_LIMIT_MS = 20.0


class LoopProbe:
    """The longest time the event loop ran something else when a 5 ms sleep was due.

    `longest_gap_ms` is that time as the clock on the wall sees it. On a shared machine it also
    holds the time the loop's thread waited for a CPU that other processes had; Linux counts
    that wait per thread (schedstat run delay), and `longest_held_ms` is the gap without it:
    what this process did to the loop (its own work, or another of its threads holding the
    interpreter lock).
    """

    def __init__(self):
        self.longest_gap_s = 0.0
        self.longest_held_s = 0.0
        self._task = None
        self._schedstat = None

    def start(self):
        self._schedstat = os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
        self._task = asyncio.create_task(self._run(), name="loop-probe")

    async def stop(self):
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        os.close(self._schedstat)
        return {"longest_gap_ms": self.longest_gap_s * 1000, "longest_held_ms": self.longest_held_s * 1000}

    def _run_delay_s(self) -> float:
        return int(os.pread(self._schedstat, 64, 0).split()[1]) / 1e9

    async def _run(self):
        while True:
            started, waited = time.perf_counter(), self._run_delay_s()
            await asyncio.sleep(PROBE_SLEEP_S)
            gap = time.perf_counter() - started - PROBE_SLEEP_S
            self.longest_gap_s = max(self.longest_gap_s, gap)
            self.longest_held_s = max(self.longest_held_s, gap - (self._run_delay_s() - waited))


def big_plan_text(shipped: str, version: str, size_bytes: int) -> str:
    """The shipped plan with routing code rules added until it is `size_bytes` long."""
    names = ["Qicun", "Lugang", "Gaomen", "Xiahe"]
    parts = [shipped.replace('version = "2026-11-28.1"', f'version = "{version}"')]
    size, n = len(parts[0]), 0
    while size < size_bytes:
        hub, rest = divmod(n, 100_000)
        outlet, route = divmod(rest, 100)
        rule = f'\n[[routes]]\ncode = "{900 + hub:03d}-K{outlet:03d}-{route:02d}"\ndestination = "{names[n % 4]}"\n'
        parts.append(rule)
        size += len(rule)
        n += 1
    return "".join(parts)


def line_with_watched_plan(folder):
    shipped = REPO / "configs" / "plans" / "county-24.plan.toml"
    plan = folder / "county-24.plan.toml"
    shutil.copy(shipped, plan)
    shutil.copy(shipped.parent / "county-24.preadvice.csv", folder / "county-24.preadvice.csv")
    config = private_copy(REPO / "configs" / "county-24.toml", folder, plan_path=plan, watch="true",
                          watch_interval_ms="200")
    return config, plan, shipped.read_text()


async def save_and_wait(controller, plan, text, settled, timeout_s):
    """Save `text` (bytes) over the plan (written elsewhere, then renamed, as editors do) and
    measure the loop until `settled()` and half a second more; returns LoopProbe.stop()'s figures."""
    scratch = plan.with_suffix(".saving")
    await asyncio.to_thread(scratch.write_bytes, text)
    probe = LoopProbe()
    probe.start()
    scratch.replace(plan)
    async with asyncio.timeout(timeout_s):
        while not settled():
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)             # what follows the swap (freeing the old plan) counts too
    return await probe.stop()


async def test_a_plan_above_the_limit_is_refused_and_one_below_is_swapped_without_holding_the_loop(tmp_path):
    folder = tmp_path.resolve()
    config, plan, shipped = line_with_watched_plan(folder)
    too_big = big_plan_text(shipped, "too-big", 50_000_000).encode()
    at_limit = big_plan_text(shipped, "at-limit", text_files.PLAN.limit_bytes - 200_000).encode()
    small_again = big_plan_text(shipped, "small-again", 0).encode()

    async def during(controller):
        while controller.stats.decided < 5:
            await asyncio.sleep(0.01)
        held_refusing = await save_and_wait(controller, plan, too_big, lambda: controller.plan_refused, 60)
        refused = controller.plan_refused
        held_building = await save_and_wait(controller, plan, at_limit,
                                            lambda: controller.plan.version == "at-limit", 240)
        held_freeing = await save_and_wait(controller, plan, small_again,
                                           lambda: controller.plan.version == "small-again", 60)
        return held_refusing, refused, held_building, held_freeing

    report, rows, controller, result = await run_shift(config, 90, 6000, 3, during)
    refusing, refused, building, freeing = result
    for what, held in (("50 MB plan: refused", refusing), (f"{len(at_limit) / 1e6:.1f} MB plan: swapped in", building),
                       ("the small plan again: swapped in, the big one freed", freeing)):
        print(f"\n{what}; the loop was held at most {held['longest_held_ms']:.1f} ms by this process "
              f"(longest gap {held['longest_gap_ms']:.1f} ms, other processes' use of the CPU included)", end="")
    print()
    assert refused == (f"plan {plan} refused, plan 2026-11-28.1 stays active: {plan}: the sort plan is 50.0 MB, "
                       f"more than a sort plan may be (16 MB). {text_files.PLAN.too_big_remedy}")
    assert controller.plan.version == "small-again"
    assert report["lost"] == 0
    assert not [r for r in report["records"] if r["result"] == "NO_HEARTBEAT"]      # the PLC never gave up on us
    assert max(held["longest_held_ms"] for held in (refusing, building, freeing)) < HELD_LIMIT_MS
