"""The default courier rules (fastpath/default_couriers.toml) and how a plan extends or overrides them."""
import pytest

from fastpath import PlanError, Reason, Router, load_plan
from fastpath import couriers as courier_formats

PLAN = """
[plan]
version = "t1"
{plan_keys}
[special]
no_read = 10
multi_read = 10
no_rule = 9
overflow = 8
reject = 10
{couriers}
[destinations.A]
chutes = [1, 2]
[destinations.B]
chutes = [3]
[[courier_rules]]
courier = "Best"
destination = "B"
"""


def _router(tmp_path, couriers="", plan_keys=""):
    path = tmp_path / "t.plan.toml"
    path.write_text(PLAN.format(couriers=couriers, plan_keys=plan_keys), encoding="utf-8")
    return Router(load_plan(path, n_chutes=10))


def test_every_default_courier_says_where_its_shapes_come_from():
    couriers, shared = courier_formats.default_rules()
    assert {"EMS", "SF", "YTO", "JT", "JD", "ZTO", "STO", "Yunda", "Best", "Debon", "Cainiao", "Amazon"} <= \
        {c.name for c in couriers}
    for rule in couriers + [shared]:
        assert rule.formats and rule.sources and all(s.strip() for s in rule.sources), rule


def test_no_default_format_is_given_twice():
    couriers, shared = courier_formats.default_rules()
    masks = [m for rule in couriers + [shared] for m in rule.masks]
    assert len(masks) == len(set(masks))


def test_a_plan_without_couriers_tells_them_by_the_defaults(tmp_path):
    router = _router(tmp_path)
    assert router.decide(["1207119765021"], None).courier == "EMS"
    # A default courier can be named by the plan's rules without a [couriers] section of its own.
    decision = router.decide(["71715801271000"], None)
    assert (decision.courier, decision.reason, decision.destination) == ("Best", Reason.COURIER_RULE, "B")
    assert router.decide(["718595286704"], None).courier is None      # a shared shape


def test_a_plan_courier_replaces_the_default_of_its_name(tmp_path):
    router = _router(tmp_path, '[couriers.EMS]\nformats = ["1[01]#{11}"]\n')
    assert router.decide(["1107119765021"], None).courier == "EMS"
    assert router.decide(["1207119765021"], None).courier is None     # the default 1#{12} is gone
    assert router.decide(["RR473124829GB"], None).courier is None     # and so is its s10


def test_a_plan_courier_comes_before_the_defaults(tmp_path):
    router = _router(tmp_path, '[couriers.Local]\nformats = ["7[0-9]#{12}", "QX#{9}"]\n')
    assert router.decide(["71715801271000"], None).courier == "Local"  # Best's shape, but the plan's first
    assert router.decide(["QX123456789"], None).courier == "Local"
    assert router.decide(["SF1385628716739"], None).courier == "SF"


def test_a_plan_can_do_without_the_defaults(tmp_path):
    router = _router(tmp_path, '[couriers.Best]\nformats = ["7[01]#{12}"]\n', "default_couriers = false")
    assert router.decide(["71715801271000"], None).courier == "Best"
    assert router.decide(["SF1385628716739"], None).courier is None


def test_default_couriers_must_be_true_or_false(tmp_path):
    with pytest.raises(PlanError) as caught:
        _router(tmp_path, plan_keys='default_couriers = "no"')
    assert "[plan] default_couriers = 'no': must be true or false" in str(caught.value)


def test_a_default_courier_in_the_rules_needs_the_defaults(tmp_path):
    with pytest.raises(PlanError) as caught:
        _router(tmp_path, plan_keys="default_couriers = false")
    assert "courier = 'Best': no such courier" in str(caught.value)
