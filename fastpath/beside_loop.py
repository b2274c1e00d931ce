"""Building a plan beside a running event loop: where the build stands, and its small steps.

Router.build_and_swap runs the build in a worker thread and makes a BesideLoop current for
it (a context variable, which asyncio.to_thread carries into the thread). load_plan sees it
and builds in a child process; the Python steps left in this process (putting the plan back
together from its pieces, about a tenth of a millisecond each) then run on the event loop
itself, in slices that start no step after SLICE_S, between two parcels. Not in the worker
thread: a thread that holds the GIL and loses its CPU to another process holds up the loop
for as long as the operating system keeps it waiting, which on a busy machine is milliseconds.
"""
import asyncio
import concurrent.futures
import contextvars
import threading
import time

SLICE_S = 0.0001
POLL_S = 0.1

_current = contextvars.ContextVar("fastpath_beside_loop", default=None)


class BesideLoop:
    def __init__(self, loop):
        self.loop = loop
        self.given_up = threading.Event()

    def give_up(self):
        """The swap will not happen (timeout, cancellation): stop the build where it is."""
        self.given_up.set()

    def check(self):
        if self.given_up.is_set():
            raise TimeoutError("the plan build was given up: the reload timed out or was cancelled")

    def wait(self, future):
        """future.result(), checking every POLL_S that the build is still wanted."""
        while True:
            self.check()
            try:
                return future.result(timeout=POLL_S)
            except concurrent.futures.TimeoutError:
                continue

    def run(self, steps):
        """Run every step of the iterator on the loop, in slices; from a worker thread."""
        done = concurrent.futures.Future()

        def slice_():
            if done.done():              # the worker gave up waiting
                return
            started = time.perf_counter()
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
            self.loop.call_soon(slice_)    # parcels waiting meanwhile go first
        try:
            self.loop.call_soon_threadsafe(slice_)
            self.wait(done)
        finally:
            done.cancel()


def _settle(outcome, value):
    try:
        outcome(value)
    except concurrent.futures.InvalidStateError:
        pass                             # cancelled by the worker meanwhile: nobody waits


def current():
    """The BesideLoop of the build running in this context, or None."""
    return _current.get()


def enter(beside):
    return _current.set(beside)


def leave(token):
    _current.reset(token)


def run_steps(steps):
    """Run the steps on the loop the current build is beside, or here when there is none."""
    beside = current()
    if beside is not None:
        try:
            on_loop = asyncio.get_running_loop() is beside.loop
        except RuntimeError:
            on_loop = False
        if not on_loop:
            beside.run(steps)
            return
    for _ in steps:
        pass
