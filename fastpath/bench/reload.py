"""The reload part of the routing benchmark: how long a decision loop is held up while a plan
with millions of pre-advice records is built and swapped in, against the same loop with
nothing else of ours running (idle), in the same run.

A task decides parcels on the event loop, a batch at a time, and yields between batches. For
every turn (one batch to the next) it notes the wall time and how long the loop's thread
waited for a CPU (Linux schedstat run delay, which other processes on a shared machine
cause). The rest of a turn is time the thread ran (decisions, the steps of a swap, freeing
the old plan) or waited for something other than a CPU, such as the GIL: that rest is what
our own process did to the loop, and is reported as `held`. On a virtual machine it also holds
the time the host gave the CPU to someone else (steal), which the baselines show.
`longest_loop_slice_ms` is the longest slice of plan steps the loop ran itself (fastpath/offloop_build.py),
in wall time (steal included); `longest_loop_slice_cpu_ms` is the loop thread's CPU time in it.

Two ways to build are compared, one after the other in each round: "process" (the off-loop
loader: load_plan in a child process, what Router.reload does) and "thread" (load_plan in the
worker thread itself, offloop_build.load_in_thread).
Two baselines of the same length run in each round too: "idle" (nothing else of ours) and
"busy" (a CPU-bound child process at the build's priority: what any one more process on the
machine does to the loop).
"""
import array
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

from ..offloop_build import load_in_thread
from ..plan_build_child import BUILD_NICE
from ..router import build_thread

MODES = ("process", "thread")
BATCH = 21
IDLE_CAP_S = 10.0


class _RunDelay:
    """Nanoseconds the calling thread has waited for a CPU so far (None off Linux)."""

    def __init__(self):
        try:
            self._fd = os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def read(self):
        return 0 if self._fd is None else int(os.pread(self._fd, 64, 0).split()[1])

    def close(self):
        if self._fd is not None:
            os.close(self._fd)

    @property
    def available(self):
        return self._fd is not None


async def _watch(router, stop):
    """Decide until `stop` is set; statistics of the gaps between decisions and of the turns."""
    parcels = [(["SF1234567890123"], "311-J01-05"), ([], "312-J02-20"), (["7312345678901"], None)] * (BATCH // 3)
    clock = time.perf_counter_ns
    delay = _RunDelay()
    longest_gap = decisions = gaps_over_1ms = 0
    held = array.array("q")              # not a list: the collector would walk it on every pass
    try:
        started = last = turn_start = clock()
        turn_delay = delay.read()
        while not stop.is_set():
            for reads, code in parcels:
                router.decide(reads, code)
                now = clock()
                gap = now - last
                longest_gap = max(longest_gap, gap)
                gaps_over_1ms += gap > 1_000_000
                last = now
            decisions += len(parcels)
            await asyncio.sleep(0)
            now, now_delay = clock(), delay.read()
            held.append((now - turn_start) - (now_delay - turn_delay))
            turn_start, turn_delay = now, now_delay
        seconds = (clock() - started) / 1e9
        available = delay.available
    finally:
        delay.close()
    held = np.frombuffer(held, np.int64) if held else np.zeros(1, np.int64)
    return {"decisions": decisions, "turns": len(held), "longest_gap_ms": round(longest_gap / 1e6, 3),
            "gaps_over_1ms_per_s": round(gaps_over_1ms / seconds, 1),
            "longest_held_ms": round(int(held.max()) / 1e6, 3) if available else None,
            "held_p999_ms": round(float(np.percentile(held, 99.9)) / 1e6, 3) if available else None,
            "held_over_1ms_per_s": round(int((held > 1_000_000).sum()) / seconds, 1) if available else None}


async def _during(router, work):
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(router, stop))
    start = time.perf_counter()
    try:
        await work()
    finally:
        seconds = time.perf_counter() - start
        stop.set()
        found = await asyncio.wait_for(watcher, 5)
    return seconds, found


def _spin(seconds):
    """A CPU-bound child process at the build's priority, for `seconds`; waited for here."""
    subprocess.run([sys.executable, "-c", f"import os, time\nos.nice({BUILD_NICE})\nend = time.monotonic() + {seconds}\n"
                    "while time.monotonic() < end: pass"], check=True, timeout=seconds + 60)


def _build(mode, plan_path, n_chutes):
    """The build that Router.build_and_swap runs for `mode`."""
    if mode == "process":
        return lambda load: load(plan_path, n_chutes)
    return lambda load: load_in_thread(plan_path, n_chutes)


async def _rounds(router, plan_path, n_chutes, reloads, modes):
    during = {mode: [] for mode in modes}
    idle, busy = [], []
    loop = asyncio.get_running_loop()
    for _ in range(reloads):
        windows = []
        for mode in modes:
            build = _build(mode, plan_path, n_chutes)
            built_s, found = await _during(router, lambda: router.build_and_swap(build, timeout_s=600))
            steps = router.last_build
            during[mode].append({"build_s": round(built_s, 2), **found, "loop_slices": steps.slices,
                                 "longest_loop_slice_ms": round(steps.longest_slice_s * 1e3, 3),
                                 "longest_loop_slice_cpu_ms": round(steps.longest_slice_cpu_s * 1e3, 3)})
            windows.append(min(built_s, IDLE_CAP_S))
        for quiet_s in windows:
            _, found = await _during(router, lambda: asyncio.sleep(quiet_s))
            idle.append({"window_s": round(quiet_s, 2), **found})
        spin_s = statistics.median(windows)
        _, found = await _during(router, lambda: loop.run_in_executor(build_thread(), _spin, spin_s))
        busy.append({"window_s": round(spin_s, 2), **found})
    return during, idle, busy


SUMMARIZED = ("longest_gap_ms", "gaps_over_1ms_per_s", "longest_held_ms", "held_p999_ms", "held_over_1ms_per_s")


def _medians(windows):
    out = {}
    for key in SUMMARIZED:
        values = [w[key] for w in windows if w[key] is not None]
        out[f"median_{key}"] = round(statistics.median(values), 3) if values else None
    return out


def run(router, plan_path, n_chutes, reloads, modes=MODES):
    """Reload the plan at `plan_path` `reloads` times per mode, decisions running meanwhile."""
    # As the controller does once started: what is loaded by now stays out of the collector's
    # passes, which would otherwise walk it in the middle of a reload's steps.
    gc.collect()
    gc.freeze()
    during, idle, busy = asyncio.run(_rounds(router, plan_path, n_chutes, reloads, modes))
    report = {"reloads_per_mode": reloads, "decisions_per_turn": BATCH,
              "idle": {**_medians(idle), "windows": idle}, "busy": {**_medians(busy), "windows": busy}}
    for mode in modes:
        report[mode] = {**_medians(during[mode]),
                        "median_build_s": round(statistics.median(w["build_s"] for w in during[mode]), 2),
                        "longest_loop_slice_ms": max(w["longest_loop_slice_ms"] for w in during[mode]),
                        "longest_loop_slice_cpu_ms": max(w["longest_loop_slice_cpu_ms"] for w in during[mode]),
                        "reloads": during[mode]}
    for baseline in ("idle", "busy"):
        report[f"ratio_to_{baseline}"] = {
            mode: {key: _ratio(report[mode][f"median_{key}"], report[baseline][f"median_{key}"]) for key in SUMMARIZED}
            for mode in modes}
    swap_start = time.perf_counter_ns()
    router.swap(router.plan)
    report["swap_call_ms"] = round((time.perf_counter_ns() - swap_start) / 1e6, 3)
    return report


def _ratio(a, b):
    return None if a is None or not b else round(a / b, 2)
