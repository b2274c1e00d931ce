"""Real-time scheduling for the simulated PLC process, where the operating system grants it.

A PLC runs its outputs on a real-time kernel; the simulator shares a PC with the controller and
anything else. Under load an ordinary process wakes up tens of milliseconds late now and then,
which would show as diverters firing late. SCHED_FIFO wakes it within a fraction of a
millisecond. The simulator sleeps almost all the time, so it costs the others little; child
processes (label rendering) start at normal priority again (SCHED_RESET_ON_FORK).
"""
import os

FIFO_PRIORITY = 10


def request_realtime() -> str:
    """Raise this process's scheduling priority as far as allowed; returns what was granted."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(FIFO_PRIORITY))
        return f"real-time scheduling (SCHED_FIFO {FIFO_PRIORITY})"
    except (AttributeError, OSError):
        pass
    try:
        os.nice(-10)
        return "raised priority (nice -10)"
    except OSError:
        return ("normal priority: real-time scheduling needs CAP_SYS_NICE (run as root or give the "
                "capability); on a loaded machine diverters may fire a few milliseconds late")
