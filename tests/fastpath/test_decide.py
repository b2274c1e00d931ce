"""Order of trust, exceptions, spread policy and chute states, on a small plan."""
import pytest

from fastpath import Decision, Reason, Router, load_plan
from tests.fastpath.conftest import SMALL_PLAN

PRE = "waybill,destination\nSF1234567890123,A\nJDX123456789012,A\n11234567890 12,B\nodd-number-ß,B\n"


@pytest.fixture
def router(write_plan, pure):
    path = write_plan(SMALL_PLAN + '[preadvice]\nfiles = ["pre.csv"]\n', PRE)
    return Router(load_plan(path, n_chutes=10), pure=pure)


def test_preadvice_beats_routing_code(router):
    assert router.decide(["JDX123456789012"], "571-J25-03") == Decision(1, Reason.PREADVICE, "JD", "A")


def test_exact_code_beats_range_beats_prefix(router):
    assert router.decide([], "571-J25-03") == Decision(3, Reason.ROUTING_CODE, None, "B")
    assert router.decide([], "571-J25-04") == Decision(1, Reason.ROUTING_CODE, None, "A")
    assert router.decide([], "571-J25-10") == Decision(4, Reason.ROUTING_CODE, None, "C")
    assert router.decide([], "571-K00-01") == Decision(3, Reason.ROUTING_CODE, None, "B")


def test_routing_code_is_read_loosely(router):
    assert router.decide([], " 571 j25  03 ").destination == "B"
    assert router.decide([], "571--J25-3").destination == "A"


def test_courier_rule_is_the_last_resort(router):
    assert router.decide(["JDK000000000001"], None) == Decision(4, Reason.COURIER_RULE, "JD", "C")
    assert router.decide(["JDK000000000001"], "571-J25-05") == Decision(1, Reason.ROUTING_CODE, "JD", "A")


def test_override_keeps_the_courier_on_its_chute(router):
    assert router.decide(["SF1234567890123"], None) == Decision(7, Reason.COURIER_OVERRIDE, "SF", "A")
    assert router.decide(["SF9999999999999"], None) == Decision(7, Reason.COURIER_OVERRIDE, "SF", None)


def test_exceptions(router):
    assert router.decide([], None) == Decision(10, Reason.NO_READ, None, None)
    assert router.decide(["", "  "], "  ") == Decision(10, Reason.NO_READ, None, None)
    assert router.decide(["SF1234567890123", "JDX123456789012"], "571") == Decision(10, Reason.MULTI_READ, None, None)
    assert router.decide(["sf1234567890123 ", "SF1234567890123"], None).reason == Reason.COURIER_OVERRIDE
    assert router.decide(["XYZ"], "999-A") == Decision(9, Reason.NO_RULE, None, None)
    assert router.decide(["JDX999999999999"], None).reason == Reason.COURIER_RULE


def test_reads_that_do_not_fit_a_code_still_find_their_preadvice(router):
    assert router.decide(["11234567890 12"], None) == Decision(3, Reason.PREADVICE, None, "B")
    assert router.decide(["ODD-NUMBER-ß"], None) == Decision(3, Reason.PREADVICE, None, "B")


def test_round_robin_skips_unavailable_chutes(router):
    chutes = [router.decide([], "571-J25-05").chute for _ in range(4)]
    assert chutes == [1, 2, 1, 2]
    router.set_chute_state(2, full=True)
    assert [router.decide([], "571-J25-05").chute for _ in range(3)] == [1, 1, 1]


def test_first_available_fills_one_chute(router):
    assert [router.decide([], "571-J25-77").chute for _ in range(3)] == [4, 4, 4]
    router.set_chute_state(4, enabled=False)
    assert router.decide([], "571-J25-77").chute == 5


def test_overflow_then_reject(router):
    router.set_chute_state(1, faulted=True)
    router.set_chute_state(2, enabled=False)
    assert router.decide([], "571-J25-05") == Decision(8, Reason.OVERFLOW, None, "A")
    router.set_chute_state(8, full=True)
    assert router.decide([], "571-J25-05") == Decision(10, Reason.REJECT, None, "A")
    router.set_chute_state(1)
    assert router.decide([], "571-J25-05") == Decision(1, Reason.ROUTING_CODE, None, "A")


def test_unavailable_special_chute_sends_to_reject_keeping_the_reason(router):
    router.set_chute_state(9, full=True)
    assert router.decide(["XYZ"], None) == Decision(10, Reason.NO_RULE, None, None)


def test_chute_state_is_checked(router):
    with pytest.raises(ValueError, match=r"chute 11 does not exist: this line has chutes 1..10"):
        router.set_chute_state(11, full=True)
    router.set_chute_state(3, full=True, faulted=True)
    assert router.chute_state(3) == {"enabled": True, "full": True, "faulted": True}


def test_s10_needs_its_check_digit(router):
    assert router.decide(["RR123456785CN"], None).courier == "EMS"
    assert router.decide(["RR123456784CN"], None).courier is None


def test_reasons_are_stable_register_values():
    assert [(r.name, int(r)) for r in Reason] == [
        ("PREADVICE", 1), ("ROUTING_CODE", 2), ("COURIER_RULE", 3), ("COURIER_OVERRIDE", 4), ("NO_READ", 5),
        ("MULTI_READ", 6), ("NO_RULE", 7), ("OVERFLOW", 8), ("REJECT", 9), ("OVERWEIGHT", 10), ("OVERSIZE", 11)]


def test_swap_changes_the_plan_between_decisions_and_keeps_chute_states(router, write_plan):
    router.set_chute_state(3, full=True)
    new = load_plan(write_plan(SMALL_PLAN.replace('version = "t1"', 'version = "t2"'), name="new.plan.toml"), 10)
    router.swap(new)
    assert router.plan.version == "t2"
    assert router.chute_state(3)["full"]
    assert router.decide(["JDX123456789012"], None) == Decision(4, Reason.COURIER_RULE, "JD", "C")


def test_preadvice_destination_is_what_pre_advice_alone_says(router):
    plan = router.plan
    # In pre-advice: the routing code cannot change these decisions, override or not.
    assert plan.preadvice_destination("JDX123456789012") == "A"
    assert plan.preadvice_destination(" sf1234567890123") == "A"        # override chute, pre-advice A
    assert plan.preadvice_destination(b"ODD-NUMBER-\xc3\x9f") == "B"      # a read without a code
    for read in ("SF9999999999999", "JDK000000000001", "", "  ", "XYZ"):
        assert plan.preadvice_destination(read) is None, read
    for read in ("JDX123456789012", "SF1234567890123", "11234567890 12", "JDK000000000001"):
        alone = router.decide([read], None)[1:]              # chutes aside: spreading moves them
        with_code = router.decide([read], "571-J25-03")[1:]
        assert (alone == with_code) == (plan.preadvice_destination(read) is not None), read
