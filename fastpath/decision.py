"""What a routing decision says: the chute, and why.

Reason values travel to the PLC in Modbus registers and into parcel records, so they are
small, stable integers: never renumber a member, only add. 0 means "unset" (a register the
controller has not written yet). fastpath owns 1..15; 16..63 are left to the controller
for outcomes only it can see (a late answer, a lost parcel, a divert not confirmed).
"""
import enum
from typing import NamedTuple, Optional


class Reason(enum.IntEnum):
    PREADVICE = 1         # the waybill is in the courier's pre-advice data
    ROUTING_CODE = 2      # the printed routing code matched a route rule
    COURIER_RULE = 3      # only the courier was known; its fallback destination was used
    COURIER_OVERRIDE = 4  # the courier keeps its own chute(s)
    NO_READ = 5           # neither a waybill nor a routing code was read
    MULTI_READ = 6        # two or more different waybills on one parcel
    NO_RULE = 7           # something was read, but no rule gives a destination
    OVERFLOW = 8          # every chute of the destination is disabled, full or faulted
    REJECT = 9            # the overflow chute is unavailable too: end-of-line reject
    OVERWEIGHT = 10       # the scale weighed it above the plan's [weights] overweight_kg
    OVERSIZE = 11         # a side measured longer than the plan's [weights] oversize_mm


FIRST_CONTROLLER_REASON = 16


class Decision(NamedTuple):
    chute: int                      # 1-based chute number
    reason: Reason
    courier: Optional[str]          # courier name from the plan, when the waybill told it
    destination: Optional[str]      # destination name from the plan, when one was found
