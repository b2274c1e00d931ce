"""The 64-bit codes: one code per string they cover, the same in Python and in C."""
from hypothesis import given
from hypothesis import strategies as st

import fastpath._core as core
from fastpath import couriers, routing_code, waybill
from fastpath.toml_lines import key_lines

shaped = st.builds(lambda p, d, s: p + d + s,
                   st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=5), st.text("0123456789", max_size=20),
                   st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", max_size=3))


@given(shaped)
def test_waybill_code_is_a_bijection_on_its_shapes(text):
    canon = text.encode("ascii")
    code = waybill.encode(canon)
    if code:
        assert 0 < code < 2 ** 63 and waybill.decode(code) == canon
    assert core.waybill_code(text) == code
    assert core.waybill_code(" " + text.lower() + "\t") == code


@given(st.one_of(shaped, st.text(max_size=24)))
def test_compiled_and_python_codes_agree_on_anything(text):
    assert core.waybill_code(text) == waybill.encode(waybill.canonical(text))


def test_known_waybill_shapes_fit():
    for number in ["SF1234567890123", "SF123456789012", "YT1234567890123", "JT1234567890123", "JDX123456789012",
                   "JDVA12345678901", "773456789012345", "7312345678901", "RR123456785CN", "000000000000000000"]:
        assert waybill.encode(number.encode()), number
    for number in ["SF1234567890123456", "ABCDE1", "1234567890123456789", "SF-123", "AB1CDE", "12AB"]:
        assert waybill.encode(number.encode()) == 0, number


def test_routing_code_canonical_form_and_code():
    assert routing_code.canonical(" 571 j25--03 ") == b"571-J25-03"
    assert routing_code.canonical(" - ") is None
    assert routing_code.encode(b"571-J25-03") != routing_code.encode(b"571-J25-3")
    assert routing_code.encode(b"230-12-04-01") > 0
    assert routing_code.encode(b"1234567890123") == 0


def test_toml_line_locator():
    text = '[plan]\nversion = "1"\n[destinations."A b"]\nchutes = [1]\n[[routes]]\ncode = "1"\n[[routes]]\nprefix = "2"\n'
    lines = key_lines(text)
    assert lines[("destinations", "A b", "chutes")] == 4
    assert lines[("routes", 1, "prefix")] == 8
    assert lines[("routes", 0)] == 5


_CLASSES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"
masks = st.lists(st.one_of(st.integers(1, 2 ** 37 - 1), st.sampled_from(
    [couriers.DIGITS_MASK, couriers.LETTERS_MASK, 1 << 36, 1 << 9, (1 << 37) - 1])), min_size=1, max_size=8)


@given(masks, st.data())
def test_a_format_regex_takes_exactly_the_classes_of_each_position(format_masks, data):
    regex = couriers.masks_to_regex(tuple(format_masks))
    text = data.draw(st.text(_CLASSES + "az_ .", min_size=len(format_masks) - 1, max_size=len(format_masks) + 1))
    fits = len(text) == len(format_masks) and all(
        c in _CLASSES and mask >> _CLASSES.index(c) & 1 for c, mask in zip(text, format_masks))
    assert bool(regex.fullmatch(text.encode("ascii"))) == fits
