"""The shapes of a plan's routing codes, which its label readers accept."""
from fastpath import load_plan
from tests.fastpath.conftest import SMALL_PLAN


def test_the_shipped_plan_has_three_and_four_segment_codes(shipped_plan):
    assert {(3, 3, 2), (3, 2, 2, 2)} <= shipped_plan.routing_shapes
    assert all(len(shape) >= 3 for shape in shipped_plan.routing_shapes)


def test_shapes_come_from_codes_and_ranges_not_from_short_prefixes(write_plan):
    plan = load_plan(write_plan(SMALL_PLAN), n_chutes=10)
    assert plan.routing_shapes == {(3, 3, 2)}


def test_a_plan_of_short_prefixes_only_accepts_any_shape(write_plan):
    text = SMALL_PLAN.split("[[routes]]")[0] + (
        '[[routes]]\nprefix = "571-J25"\ndestination = "C"\n'
        '[[routes]]\nprefix = "572"\ndestination = "B"\n')
    plan = load_plan(write_plan(text), n_chutes=10)
    assert plan.routing_shapes is None
