"""The simulated labels: what they print for each route of the plan, and which are pre-advised."""
import collections
import itertools

import pytest

from fastpath import Router, load_plan
from sim_plc.labels import Expectation, label_stream, preadvised_records, printed_routes, route_shape
from tests.conftest import REPO


@pytest.fixture(scope="module")
def plan():
    return load_plan(REPO / "configs" / "plans" / "county-24.plan.toml", 24)


def test_every_route_of_the_plan_is_printed_as_a_full_code_it_routes(plan):
    from fastpath.plan_file import read_plan_file
    rules = read_plan_file(plan.path, 24).routes
    routes = printed_routes(plan)
    assert [r.rule for r in routes] == [r.text for r in rules]
    router = Router(plan)
    for route in routes:
        assert route.codes and all(router.decide([], c).destination == route.destination for c in route.codes)
    by_rule = {r.rule: r.codes for r in routes}
    # Prefix rules print whole codes: EMS's four segments under an EMS prefix, three elsewhere.
    assert {route_shape(c) for c in by_rule["312-07-34"]} == {"3-2-2-2"}
    assert {route_shape(c) for c in by_rule["312-Q01"]} == {"3-3-2"}
    assert "312-J25-03" not in by_rule["312-J25"]          # the plan sends that one to Jianyang


def test_parcels_left_out_of_the_pre_advice_print_every_shape_in_proportion_to_the_routes(plan):
    routes = printed_routes(plan)
    four = sum(route_shape(r.codes[0]) == "3-2-2-2" for r in routes) / len(routes)
    labels = list(itertools.islice(label_stream(plan, 5, 0.0, 0.0, preadvice_share=0.0), 3000))
    assert not any(label.preadvised for label in labels)
    records = {w for w, _ in preadvised_records(plan)}
    assert not records & {label.truth.waybill for label in labels}
    assert len({label.truth.waybill for label in labels}) == 3000
    shapes = collections.Counter(route_shape(label.truth.routing_code) for label in labels)
    assert set(shapes) == {"3-3-2", "3-2-2-2"}
    assert shapes["3-2-2-2"] / 3000 == pytest.approx(four, abs=0.03)


def test_the_share_decides_which_parcels_the_pre_advice_holds(plan):
    expect = Expectation(plan)
    labels = list(itertools.islice(label_stream(plan, 5, 0.0, 0.0, preadvice_share=0.6), 400))
    preadvised = [label for label in labels if label.preadvised]
    assert len(preadvised) / 400 == pytest.approx(0.6, abs=0.08)
    paths = collections.Counter((label.preadvised, expect.decide(label)[1]) for label in labels)
    # The plan decides the pre-advised by pre-advice and the others by their label alone; the
    # courier that keeps its own chute keeps it either way.
    assert set(paths) == {(True, "PREADVICE"), (True, "COURIER_OVERRIDE"),
                          (False, "ROUTING_CODE"), (False, "COURIER_OVERRIDE")}


def test_shares_outside_0_to_1_are_refused(plan):
    with pytest.raises(ValueError, match="preadvice_share must be a share from 0 to 1, got 1.5"):
        next(label_stream(plan, 5, 0.0, 0.0, preadvice_share=1.5))
    with pytest.raises(ValueError, match="add up to more than every parcel"):
        next(label_stream(plan, 5, 0.6, 0.6))
