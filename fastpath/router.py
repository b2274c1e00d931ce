"""The Router: one live plan, the chute states, and the routing core that decides.

decide() runs on the controller's event loop. A new plan is built elsewhere (reload and
build_and_swap: load_plan in a child process, waited for by a worker thread) and swap()
replaces the core with one attribute assignment, which the GIL makes atomic: a decision sees
the old plan or the new one, never a mix. Chute states belong to the machine, not to the
plan, so they survive swaps.
"""
import asyncio
import functools
import gc
import sys

from . import beside_loop
from . import implementation
from .errors import PlanError
from .plan import load_plan

DISABLED, FULL, FAULTED = 1, 2, 4
# Python work in the worker thread (starting the build process; a whole build when `build`
# asks for one in this process) holds the GIL in stretches; at the default 5 ms switch
# interval the event loop could wait that long for it.
RELOAD_SWITCH_INTERVAL_S = 0.0005


class Router:
    def __init__(self, plan, *, pure=None):
        self._module = implementation.engine_module(pure)
        self.implementation = "pure" if self._module.__name__.endswith("_pure") else "compiled"
        self._flags = bytearray(plan.n_chutes + 1)
        self._reload_lock = asyncio.Lock()
        self._install(self._module.Engine(plan, self._flags))

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
        return await self.build_and_swap(functools.partial(load_plan, path, len(self._flags) - 1),
                                         timeout_s=timeout_s)

    async def build_and_swap(self, build, *, timeout_s=60.0):
        """Run `build()` (which returns a Plan) in a thread, then swap its plan in.

        One build at a time. load_plan called by `build` builds the plan in a child process
        (see plan_apart.py). On timeout or cancellation the live plan stays and the build is
        stopped (a child process is killed; a build in the thread itself finishes on its own
        and its plan is dropped).
        """
        async with self._reload_lock:
            beside = beside_loop.BesideLoop(asyncio.get_running_loop())
            token = beside_loop.enter(beside)
            previous = sys.getswitchinterval()
            collecting = gc.isenabled()
            sys.setswitchinterval(min(previous, RELOAD_SWITCH_INTERVAL_S))
            # A full collection triggered by the build's allocations would hold the GIL for a
            # walk of the whole heap (tens of ms): no collections while it builds.
            gc.disable()
            try:
                engine = await asyncio.wait_for(asyncio.to_thread(lambda: self._engine_for(build())), timeout_s)
            except BaseException:
                beside.give_up()
                raise
            finally:
                beside_loop.leave(token)
                sys.setswitchinterval(previous)
                if collecting:
                    gc.enable()
            self._install(engine)
            return engine.plan
