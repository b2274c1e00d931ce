"""The plan's [weights] rule: overweight and oversize parcels to their own chute.

It applies to a parcel only when the scale's weighing came before its decision (a parcel never
waits for it); whatever was read, such a parcel must not reach a swing arm it could break or
block. Its destination and courier stay in the decision, for the records and the reports.
"""
from __future__ import annotations

from fastpath import Decision, Reason


def weighed_decision(plan, router, decision: Decision, weight_kg: float | None, longest_mm: float | None) -> Decision:
    """`decision` as the router gave it, or the overweight or oversize chute when the plan has one and
    the parcel is past its limit; that chute disabled, full or faulted: the reject chute."""
    rules = plan.weights
    if not rules:
        return decision
    if weight_kg is not None and "overweight_kg" in rules and weight_kg > rules["overweight_kg"]:
        reason, chute = Reason.OVERWEIGHT, rules["overweight_chute"]
    elif longest_mm is not None and "oversize_mm" in rules and longest_mm > rules["oversize_mm"]:
        reason, chute = Reason.OVERSIZE, rules["oversize_chute"]
    else:
        return decision
    state = router.chute_state(chute)
    if not state["enabled"] or state["full"] or state["faulted"]:
        chute = plan.special["reject"]
    return Decision(chute, reason, decision.courier, decision.destination)
