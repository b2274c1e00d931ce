"""Building a plan off the event loop, to be swapped in beside a running line.

Router.build_and_swap makes an OffLoopBuild for each build and calls the build in its worker
thread with the build's loader, OffLoopBuild.load: a child process builds the plan where one
can be started (plan_build_process.py), and the Python steps left in this process (putting the
plan back together from its pieces, about a tenth of a millisecond each) then run on the event
loop itself, in slices that start no step after SLICE_S, between two parcels. Not in the worker
thread: a thread that holds the GIL and loses its CPU to another process holds up the loop for
as long as the operating system keeps it waiting, which on a busy machine is milliseconds.
Where no child process can be started, the worker thread builds the plan itself
(load_in_thread).
"""
import asyncio
import concurrent.futures
import contextlib
import os
import sys
import time
import weakref

from . import plan_build_process
from .plan import load_plan

SLICE_S = 0.0001
# A build in the worker thread itself holds the GIL in stretches of Python; at the default 5 ms
# switch interval the event loop could wait that long for it.
THREAD_BUILD_SWITCH_INTERVAL_S = 0.0005


class OffLoopBuild:
    """One build: the loop it runs beside, whether it is still wanted, and its loader.

    The worker thread never polls: each time another thread wakes up it needs the GIL, and
    the event loop may then have to wait until that thread gets a CPU. Its waits sleep until
    the thing waited for happens or the build is given up (wake_fd turns readable).
    """

    def __init__(self, loop):
        self.loop = loop
        self.given_up = False
        self.slices = 0                  # slices of steps run on the loop, and the longest (s):
        self.longest_slice_s = 0.0       # wall time, which holds what the host took from the VM,
        self.longest_slice_cpu_s = 0.0   # and the loop thread's own CPU time
        self.wake_fd, self._wake_w = os.pipe()
        self._futures = set()
        weakref.finalize(self, os.close, self.wake_fd)
        weakref.finalize(self, os.close, self._wake_w)

    def give_up(self):
        """The swap will not happen (timeout, cancellation): stop the build where it is."""
        if self.given_up:
            return
        self.given_up = True
        os.write(self._wake_w, b"!")
        for future in list(self._futures):
            future.cancel()

    def check(self):
        if self.given_up:
            raise TimeoutError("the plan build was given up: the reload timed out or was cancelled")

    def wait(self, future):
        """future.result(), or TimeoutError once the build is given up."""
        self._futures.add(future)
        try:
            if self.given_up:
                future.cancel()
            return future.result()
        except concurrent.futures.CancelledError:
            self.check()
            raise
        finally:
            self._futures.discard(future)

    def load(self, path, n_chutes):
        """load_plan(path, n_chutes) for this build: in a child process where one can be started,
        else in the worker thread itself. The same Plan and the same PlanError either way."""
        if plan_build_process.available():
            return plan_build_process.load(path, n_chutes, self)
        return load_in_thread(path, n_chutes)

    def run_steps(self, steps):
        """Run every step of the iterator on the loop: in slices from a worker thread, at once
        on the loop's own thread (which would otherwise wait for itself)."""
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            for _ in steps:
                pass
        else:
            self._run_in_slices(steps)

    def _run_in_slices(self, steps):
        done = concurrent.futures.Future()

        def slice_():
            if done.done():              # given up
                return
            started, started_cpu = time.perf_counter(), time.thread_time()
            try:
                while True:
                    next(steps)
                    if time.perf_counter() - started >= SLICE_S:
                        break
            except StopIteration:
                _settle(done.set_result, None)
                return
            except Exception as exc:
                _settle(done.set_exception, exc)
                return
            finally:
                self.slices += 1
                self.longest_slice_s = max(self.longest_slice_s, time.perf_counter() - started)
                self.longest_slice_cpu_s = max(self.longest_slice_cpu_s, time.thread_time() - started_cpu)
            self.loop.call_soon(slice_)    # parcels waiting meanwhile go first
        self.loop.call_soon_threadsafe(slice_)
        self.wait(done)


def _settle(outcome, value):
    try:
        outcome(value)
    except concurrent.futures.InvalidStateError:
        pass                             # cancelled by the worker meanwhile: nobody waits


@contextlib.contextmanager
def quick_gil_handover():
    """While a plan is built in the worker thread itself: hand the GIL back to the loop sooner.

    Not for a build in a child process, whose worker only wakes a few times: a forced handover
    makes the loop wait until the worker gets a CPU, and the shorter the interval, the more
    often the loop is forced.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, THREAD_BUILD_SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def load_in_thread(path, n_chutes):
    """load_plan(path, n_chutes) in the build's worker thread itself, handing the GIL back to the
    loop sooner while it runs."""
    with quick_gil_handover():
        return load_plan(path, n_chutes)
