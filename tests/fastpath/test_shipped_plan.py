"""The shipped plan loads, and routes sample parcels the way its comments say."""
import csv

from fastpath import Reason, Router
from tests.fastpath.conftest import SHIPPED_PLAN


def test_shipped_plan_loads_with_its_preadvice(shipped_plan):
    assert shipped_plan.version == "2026-11-28.1"
    assert shipped_plan.special == {"no_read": 24, "multi_read": 24, "no_rule": 23, "overflow": 22,
                                    "unavailable": 22, "reject": 24}
    assert len(shipped_plan.destinations) == 15
    assert shipped_plan.preadvice_count == 300
    assert shipped_plan.warnings == []
    assert "312-Q03-01" in shipped_plan.routing_codes and "312-Q02-15" in shipped_plan.routing_codes


def test_every_preadvice_record_routes_to_its_destination(shipped_plan, pure):
    router = Router(shipped_plan, pure=pure)
    with open(SHIPPED_PLAN.parent / "county-24.preadvice.csv", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")][1:]
    assert len(rows) == 300
    for number, destination in rows:
        d = router.decide([number], None)
        if d.courier == "SF":
            assert (d.chute, d.reason, d.destination) == (20, Reason.COURIER_OVERRIDE, destination)
        else:
            assert d.reason == Reason.PREADVICE and d.destination == destination
            assert d.chute in dict(zip(shipped_plan.destinations, shipped_plan.group_chutes[1:]))[destination]


def test_every_listed_routing_code_routes(shipped_plan, pure):
    router = Router(shipped_plan, pure=pure)
    for code in shipped_plan.routing_codes:
        d = router.decide([], code)
        assert d.reason == Reason.ROUTING_CODE and d.destination is not None, code
