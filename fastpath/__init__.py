"""fastpath: the routing core of a sorting line (which chute, and why) and its sort plans.

    plan = load_plan("configs/plans/county-24.plan.toml", n_chutes=24)
    router = Router(plan)
    router.decide(["SF1234567890123"], "571-J25-03")  -> Decision(chute, reason, courier, destination)
"""
from .decision import FIRST_CONTROLLER_REASON, Decision, Reason
from .errors import PlanError
from .implementation import current as _current
from .plan import Plan, load_plan
from .router import Router

IMPLEMENTATION = _current()

__all__ = ["Decision", "FIRST_CONTROLLER_REASON", "IMPLEMENTATION", "Plan", "PlanError", "Reason", "Router",
           "load_plan"]
