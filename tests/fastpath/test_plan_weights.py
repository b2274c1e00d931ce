"""The plan's [weights]: limits and chutes checked like every plan key, and the rule the controller applies."""
import pytest

from edge.weight_rule import weighed_decision
from fastpath import Decision, PlanError, Reason, Router
from fastpath.plan import load_plan
from tests.edge.config_files import PLAN

WEIGHTS = "\n[weights]\noverweight_kg = 30\noverweight_chute = 5\noversize_mm = 1200\noversize_chute = 6\n"
SF = "SF1234567890123"


def plan_with(tmp_path, weights: str):
    path = tmp_path / "line.plan.toml"
    path.write_text(PLAN.replace('no_rule = 5\noverflow = 5', 'no_rule = 6\noverflow = 6') + weights)
    return load_plan(path, 6)


def test_a_plan_without_weights_has_none_and_decides_as_before(tmp_path):
    plan = plan_with(tmp_path, "")
    router = Router(plan)
    decision = router.decide([SF])
    assert plan.weights == {}
    assert weighed_decision(plan, router, decision, 500.0, 5000.0) == decision


@pytest.mark.parametrize("weights, key, words", [
    ("\n[weights]\noverweight_kg = 30\n", "[weights] overweight_kg", "given without overweight_chute"),
    ("\n[weights]\noversize_chute = 6\n", "[weights] oversize_chute", "given without oversize_mm"),
    ("\n[weights]\noverweight_kg = -3\noverweight_chute = 5\n", "[weights] overweight_kg", "above 0"),
    ("\n[weights]\noverweight_kg = 30\noverweight_chute = 9\n", "[weights] overweight_chute", "from 1 to 6"),
    ("\n[weights]\noverweight_kg = 30\noverweight_chute = 3\n", "[weights] overweight_chute",
     'chute 3 is a chute of [destinations."Lugang"]'),
    ("\n[weights]\noverweigth_kg = 30\n", "[weights] overweigth_kg", "unknown key (did you mean 'overweight_kg'?)"),
])
def test_mistakes_name_the_key_and_the_fix(tmp_path, weights, key, words):
    with pytest.raises(PlanError) as caught:
        plan_with(tmp_path, weights)
    text = str(caught.value)
    assert key in text and words in text, text


def test_overweight_and_oversize_parcels_go_to_their_chutes_only_past_the_limits(tmp_path):
    plan = plan_with(tmp_path, WEIGHTS)
    router = Router(plan)
    assert plan.weights == {"overweight_kg": 30.0, "overweight_chute": 5, "oversize_mm": 1200.0, "oversize_chute": 6}
    decision = router.decide([SF])
    assert decision.reason == Reason.COURIER_OVERRIDE and decision.chute == 4
    assert weighed_decision(plan, router, decision, 30.0, 1200.0) == decision          # at the limits: as planned
    assert weighed_decision(plan, router, decision, None, None) == decision            # not weighed in time
    heavy = weighed_decision(plan, router, decision, 30.5, None)
    assert heavy == Decision(5, Reason.OVERWEIGHT, decision.courier, decision.destination)
    big = weighed_decision(plan, router, decision, 2.0, 1500.0)
    assert (big.chute, big.reason) == (6, Reason.OVERSIZE)
    both = weighed_decision(plan, router, decision, 40.0, 1500.0)
    assert (both.chute, both.reason) == (5, Reason.OVERWEIGHT)                         # weight first
    no_read = router.decide([])
    assert weighed_decision(plan, router, no_read, 31.0, None).chute == 5              # whatever was read


def test_the_overweight_chute_unavailable_sends_to_the_reject_chute(tmp_path):
    plan = plan_with(tmp_path, WEIGHTS)
    router = Router(plan)
    router.set_chute_state(5, full=True)
    heavy = weighed_decision(plan, router, router.decide([SF]), 45.0, None)
    assert (heavy.chute, heavy.reason) == (plan.special["reject"], Reason.OVERWEIGHT)
