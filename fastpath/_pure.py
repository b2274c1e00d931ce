"""The routing decision in plain Python: the reference the compiled core (_core.pyx) must match.

Same inputs, same plan, same chute states, same sequence of calls: same decisions. It is
also what runs where the extension is not built, or with SORTLINE_PURE_PYTHON=1.
"""
from . import routing_code
from . import waybill
from .batch import BatchResult
from .decision import Decision, Reason
from .reads import MULTI_READ, single_read

ROUND_ROBIN = 0


class Engine:
    def __init__(self, plan, flags):
        self.plan = plan
        self._flags = flags
        self._cursors = [-1] * len(plan.group_chutes)
        self._detect = plan.courier_table.detect
        self._table = plan.preadvice.table
        self._slow = plan.preadvice.slow
        self._special = plan.special
        self._names_courier = [None] + plan.couriers
        self._names_destination = [None] + plan.destinations

    def decide(self, waybills, code=None):
        canon = single_read(waybills)
        if canon is MULTI_READ:
            return self._exception(Reason.MULTI_READ, 0)
        route = routing_code.canonical(code)
        if canon is None and route is None:
            return self._exception(Reason.NO_READ, 0)
        courier = self._detect(canon) if canon else 0
        chute, reason, destination = self.resolve(canon, route, courier)
        return Decision(chute, Reason(reason), self._names_courier[courier], self._names_destination[destination])

    def resolve(self, canon, route, courier):
        plan = self.plan
        destination, reason = 0, 0
        if canon:
            key = waybill.encode(canon)
            destination = self._table.get(key) if key else self._slow.get(canon, 0)
            reason = Reason.PREADVICE
        if not destination and route is not None:
            destination, reason = plan.route(route), Reason.ROUTING_CODE
        if not destination and courier:
            destination, reason = plan.courier_rule[courier], Reason.COURIER_RULE
        group = 0
        if courier:
            group = plan.override_group.get((courier, destination)) or plan.override_group.get((courier, 0), 0)
        if group:
            reason = Reason.COURIER_OVERRIDE
        elif destination:
            group = destination
        else:
            return self._special_chute("no_rule"), Reason.NO_RULE, 0
        chute = self._pick(group)
        if chute:
            return chute, reason, destination
        overflow = self._special["overflow"]
        if not self._flags[overflow]:
            return overflow, Reason.OVERFLOW, destination
        return self._special["reject"], Reason.REJECT, destination

    def _special_chute(self, role):
        chute = self._special[role]
        return chute if not self._flags[chute] else self._special["reject"]

    def _exception(self, reason, courier):
        role = "multi_read" if reason == Reason.MULTI_READ else "no_read"
        return Decision(self._special_chute(role), reason, None, None)

    def _pick(self, group):
        chutes = self.plan.group_chutes[group]
        flags = self._flags
        n = len(chutes)
        if self.plan.group_policy[group] == ROUND_ROBIN:
            start = self._cursors[group]
            for step in range(1, n + 1):
                at = (start + step) % n
                if not flags[chutes[at]]:
                    self._cursors[group] = at
                    return chutes[at]
            return 0
        for chute in chutes:
            if not flags[chute]:
                return chute
        return 0

    def decide_batch(self, waybills, codes):
        """Decisions for many parcels in order: arrays chute, reason, courier, destination."""
        n = len(waybills)
        out = BatchResult(n, self.plan)
        courier_index = {name: i for i, name in enumerate(self.plan.couriers, start=1)}
        destination_index = {name: i for i, name in enumerate(self.plan.destinations, start=1)}
        for i in range(n):
            read = waybills[i]
            d = self.decide(() if read is None else read, None if codes is None else codes[i])
            out.chute[i] = d.chute
            out.reason[i] = d.reason
            out.courier[i] = courier_index.get(d.courier, 0)
            out.destination[i] = destination_index.get(d.destination, 0)
        return out
