"""The Router: one live plan, the chute states, and the routing core that decides.

decide() runs on the controller's event loop. A new plan is built elsewhere (reload and
build_and_swap: the off-loop loader of offloop_build.py, a child process waited for by a worker
thread) and swap() replaces the core with one attribute assignment, which the GIL makes atomic:
a decision sees the old plan or the new one, never a mix. Chute states belong to the machine,
not to the plan, so they survive swaps.
"""
import asyncio
import concurrent.futures
import threading

from . import implementation
from . import mapped_arrays
from . import offloop_build
from .errors import PlanError

DISABLED, FULL, FAULTED = 1, 2, 4

_builder = None
_builder_lock = threading.Lock()


def build_thread():
    """The thread that builds plans for every Router of this process, started with the first
    Router (at start-up, as a rule) with the thread that unmaps old tables: starting a thread
    waits until the new thread has run, which on a busy machine takes a scheduler tick (4 ms
    measured), too long to wait on the event loop at a reload. One thread: builds queue behind
    each other, even one given up that still runs. Named like the event loop's own worker
    threads, which ran the builds before."""
    global _builder
    with _builder_lock:
        if _builder is None:
            _builder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="asyncio_fastpath_build")
            _builder.submit(int).result()
            mapped_arrays.start_unmapper()
    return _builder


class Router:
    def __init__(self, plan, *, pure=None):
        self._module = implementation.engine_module(pure)
        self.implementation = "pure" if self._module.__name__.endswith("_pure") else "compiled"
        self._flags = bytearray(plan.n_chutes + 1)
        self._reload_lock = asyncio.Lock()
        self.last_build = None           # the OffLoopBuild of the last build: slices run on the loop
        self._install(self._module.Engine(plan, self._flags))
        build_thread()

    def _install(self, engine):
        self._engine = engine
        # Bound straight to the core: a decision is one call into it, not two. Each call
        # runs wholly on the engine it started on, so a swap in between is harmless.
        self.decide = engine.decide

    @property
    def plan(self):
        return self._engine.plan

    def decide(self, waybills, routing_code=None):
        """Decision for one parcel: `waybills` is the list of distinct reads (may be empty)."""
        return self._engine.decide(waybills, routing_code)

    def decide_batch(self, waybills, routing_codes=None):
        """Decisions for many parcels: each waybill entry is a read, a list of reads, or None."""
        return self._engine.decide_batch(waybills, routing_codes)

    def set_chute_state(self, chute, enabled=True, full=False, faulted=False):
        self._check_chute(chute)
        self._flags[chute] = (0 if enabled else DISABLED) | (FULL if full else 0) | (FAULTED if faulted else 0)

    def chute_state(self, chute):
        self._check_chute(chute)
        flags = self._flags[chute]
        return {"enabled": not flags & DISABLED, "full": bool(flags & FULL), "faulted": bool(flags & FAULTED)}

    def _check_chute(self, chute):
        n = len(self._flags) - 1
        if isinstance(chute, bool) or not isinstance(chute, int) or not 1 <= chute <= n:
            raise ValueError(f"chute {chute!r} does not exist: this line has chutes 1..{n}")

    def swap(self, new_plan):
        """Make `new_plan` live; the next decision uses it."""
        self._install(self._engine_for(new_plan))

    def _engine_for(self, plan):
        if plan.n_chutes != len(self._flags) - 1:
            raise PlanError(f"the plan is for {plan.n_chutes} chutes but the line has {len(self._flags) - 1}",
                            file=plan.path, remedy="load it with the line's chute count")
        return self._module.Engine(plan, self._flags)

    async def reload(self, path, *, timeout_s=60.0):
        """Build the plan at `path` in a child process, then swap it in; returns the new Plan.

        Raises PlanError (the live plan stays) or TimeoutError.
        """
        n_chutes = len(self._flags) - 1
        return await self.build_and_swap(lambda load: load(path, n_chutes), timeout_s=timeout_s)

    async def build_and_swap(self, build, *, timeout_s=60.0):
        """Run `build(load)` (which returns a Plan) in the build thread, then swap its plan in.

        `load(path, n_chutes)` is this build's off-loop loader (OffLoopBuild.load): load_plan in
        a child process where one can be started. One build at a time. On timeout or
        cancellation the live plan stays and the build is stopped (a child process is killed; a
        build in the thread itself finishes on its own and its plan is dropped).
        """
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            offloop = self.last_build = offloop_build.OffLoopBuild(loop)
            try:
                engine = await asyncio.wait_for(loop.run_in_executor(
                    build_thread(), lambda: self._engine_for(build(offloop.load))), timeout_s)
            except BaseException:
                offloop.give_up()
                raise
            self._install(engine)
            return engine.plan
