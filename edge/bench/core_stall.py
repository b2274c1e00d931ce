"""Take one CPU core away for a burst in every period, as a virtual machine's host or a burst of
other work on the PC does: a busy loop pinned to the core at real-time priority (SCHED_FIFO 5,
below the simulated PLC's 10, so the simulator itself is not stalled). For `sortline bench e2e
--take-core`; needs root for the real-time priority, and runs at normal priority otherwise.

    python -m edge.bench.core_stall CORE BURST_MS PERIOD_MS
"""
import os
import sys
import time

FIFO_PRIORITY = 5


def parse(text: str) -> tuple[int, float, float]:
    """'1,20,200' -> (core 1, 20 ms burst, 200 ms period); ValueError with what to write."""
    try:
        core, burst, period = (float(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r}: write CORE,BURST_MS,PERIOD_MS, e.g. 1,20,200") from None
    if core != int(core) or not 0 <= core < (os.cpu_count() or 1):
        raise ValueError(f"{text!r}: core {core:g} is not one of this machine's 0-{(os.cpu_count() or 1) - 1}")
    if not 0 < burst < period:
        raise ValueError(f"{text!r}: the burst must be above 0 and shorter than the period")
    return int(core), burst, period


def main(argv=None) -> int:
    core, burst_ms, period_ms = parse(",".join((argv if argv is not None else sys.argv[1:])[:3]))
    os.sched_setaffinity(0, {core})
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO_PRIORITY))
    except PermissionError:
        print("core_stall: no real-time priority without root; the stall is only a busy loop",
              file=sys.stderr)
    while True:
        end = time.perf_counter() + burst_ms / 1000
        while time.perf_counter() < end:
            pass
        time.sleep((period_ms - burst_ms) / 1000)


if __name__ == "__main__":
    sys.exit(main())
