import numpy as np
import pytest

from vision.routing_code import is_routing_code
from vision.waybill import COURIERS, WaybillCheck, check_waybill, random_waybill, s10_check_digit


def test_s10_check_digit_matches_upu_example():
    # UPU S10 standard example: RR 47312482 9 GB.
    assert s10_check_digit("47312482") == 9
    assert check_waybill("RR473124829GB").courier == "EMS"
    assert check_waybill("RR473124828GB").valid is False


@pytest.mark.parametrize("courier", COURIERS)
def test_random_waybills_validate_as_their_courier(courier):
    rng = np.random.default_rng(7)
    for _ in range(200):
        number = random_waybill(rng, courier)
        assert check_waybill(number).courier == courier, number


@pytest.mark.parametrize("text, courier", [
    ("SF1234567890123", "SF"), ("SF123456789012", "SF"), ("YT1234567890123", "YTO"),
    ("JT0012345678901", "JT"), ("JDX123456789012", "JD"), ("JDVB12345678901", "JD"),
    ("73123456789012", "ZTO"), ("3112345678901", "Yunda"), ("771234567890123", "STO"),
    ("9812345678901", "EMS"),
])
def test_known_formats(text, courier):
    assert check_waybill(text).courier == courier


def test_twelve_digits_are_waybills_of_no_courier():
    # SF, ZTO, STO, YTO and Best all printed 12-digit numbers without prefix on older forms
    # (fastpath/default_couriers.toml [shared]): the shape says waybill, not whose.
    for text in ("731234567890", "601234567890"):
        assert check_waybill(text) == WaybillCheck(True, None, None)


@pytest.mark.parametrize("text", [
    "", "SF12345", "XX1234567890123", "SF1234567890123\x00", "SF" + "1" * 40, "1234", "ЅF1234567890123",
    "SF 1234567890123", "JDA123456789012", "60123456789", "6012345678901",
])
def test_not_waybills(text):
    assert check_waybill(text).valid is False


def test_routing_codes():
    assert is_routing_code("571-J25-03")
    assert is_routing_code("100-200-30-04")
    assert not is_routing_code("571J2503")
    assert not is_routing_code("571-J25-03-04-05")


def test_routing_codes_count_only_in_the_shapes_given():
    from vision.routing_code import routing_shape, use_routing_shapes
    assert routing_shape("571-J25-03") == (3, 3, 2)
    try:
        use_routing_shapes({(3, 3, 2), (3, 2, 2, 2)})
        assert is_routing_code("571-J25-03") and is_routing_code("571-07-32-01")
        # A character lost at the end, one inside, a doubled one merged: other shapes.
        for misread in ("571-J25-0", "571-J5-03", "71-J25-03", "571-J25-03-04"):
            assert not is_routing_code(misread), misread
        assert not is_routing_code("571J2503")
    finally:
        use_routing_shapes(None)
    assert is_routing_code("571-J25-0")


def test_plan_formats_extend_the_built_in_ones():
    from vision.waybill import use_plan_formats
    try:
        use_plan_formats(lambda text: "Local" if text.startswith("QX") and len(text) == 11 else None)
        assert check_waybill("QX123456789").courier == "Local"
        # The plan tells couriers; a default shape it does not name is still a waybill.
        assert check_waybill("SF1234567890123") == WaybillCheck(True, None, None)
        assert check_waybill("QX12").valid is False
    finally:
        use_plan_formats(None)
    assert check_waybill("QX123456789").valid is False
    assert check_waybill("SF1234567890123").courier == "SF"
