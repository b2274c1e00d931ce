"""A wrong plan is refused at load time with the file, line, key, value and what to do."""
import pytest

from fastpath import PlanError, load_plan
from tests.fastpath.conftest import SMALL_PLAN

PRE = '[preadvice]\nfiles = ["pre.csv"]\n'

CASES = {
    "misspelled destination": (
        SMALL_PLAN.replace('destination = "B"\n[[routes]]\nrange', 'destination = "b"\n[[routes]]\nrange'),
        "DIR/t.plan.toml:26: [[routes]] #1 destination = 'b': no such destination. "
        "Use one of the names under [destinations]"),
    "misspelled key": (
        SMALL_PLAN.replace("[destinations.B]\nchutes = [3]", "[destinations.B]\nchute = [3]"),
        "DIR/t.plan.toml:20: [destinations.\"B\"] chute: unknown key (did you mean 'chutes'?). "
        "Allowed keys here: chutes, spread"),
    "chute that does not exist": (
        SMALL_PLAN.replace("chutes = [3]", "chutes = [3, 11]"),
        "DIR/t.plan.toml:20: [destinations.\"B\"] chutes = 11: each chute must be a whole number from 1 to 10. "
        "This line has 10 chutes; use one of them"),
    "special chute used by a destination": (
        SMALL_PLAN.replace("chutes = [3]", "chutes = [9]"),
        "DIR/t.plan.toml:20: [destinations.\"B\"] chutes = [9]: chute 9 is the no_rule chute in [special]. "
        "Use chutes that are not special here, or change [special]"),
    "duplicate code": (
        SMALL_PLAN + '[[routes]]\ncode = "571-j25-03"\ndestination = "A"\n',
        "DIR/t.plan.toml:43: [[routes]] #5 code = '571-j25-03': the same code is already routed on line 24. "
        "Keep one rule per code; delete or change the other"),
    "overlapping ranges": (
        SMALL_PLAN + '[[routes]]\nrange = ["571-J25-05", "571-J25-12"]\ndestination = "B"\n',
        "DIR/t.plan.toml:43: [[routes]] #5 range = ['571-J25-05', '571-J25-12']: overlaps the range "
        "571-J25-01..571-J25-09 on line 27. Make the ranges of one route prefix disjoint"),
    "range written backwards": (
        SMALL_PLAN + '[[routes]]\nrange = ["571-J26-09", "571-J26-01"]\ndestination = "B"\n',
        "DIR/t.plan.toml:43: [[routes]] #5 range = ['571-J26-09', '571-J26-01']: the first end is above the "
        "second. Write the lower code first"),
    "route with two kinds": (
        SMALL_PLAN + '[[routes]]\ncode = "1-2"\nprefix = "1"\ndestination = "B"\n',
        "DIR/t.plan.toml:42: [[routes]] #5: a route needs exactly one of code, prefix or range (it has code, "
        "prefix). Split it into one [[routes]] entry per rule"),
    "bad routing code": (
        SMALL_PLAN + '[[routes]]\ncode = "571/J25"\ndestination = "B"\n',
        "DIR/t.plan.toml:43: [[routes]] #5 code = '571/J25': must be a routing code: letters and digits in "
        "segments joined by '-'. Write code = \"571-J25-03\""),
    "bad courier format": (
        SMALL_PLAN.replace('formats = ["SF#{13}"]', 'formats = ["SF#{13"]'),
        "DIR/t.plan.toml:11: [couriers.SF] formats = 'SF#{13': '{n}' must follow an element and hold a number "
        "1..32. Write formats like \"SF#{13}\" or \"JD[XK]#{12}\""),
    "same format twice": (
        SMALL_PLAN.replace('formats = ["JD[XK]#{12}"]', 'formats = ["JD[KX]#{12}", "sf#{13}"]'),
        "DIR/t.plan.toml:13: [couriers.JD] formats = 'sf#{13}': the same format is already given for courier "
        "'SF'. Remove one of them: the first courier in the file would always win"),
    "invalid TOML": (
        SMALL_PLAN.replace('version = "t1"', "version = t1"),
        "DIR/t.plan.toml:3: this is not valid TOML: Invalid value (at line 3, column 11). "
        "Fix the syntax; quote text values, e.g. name = \"Dongguan\""),
    "unknown section": (
        SMALL_PLAN + "[prefs]\na = 1\n",
        "DIR/t.plan.toml:42: [prefs]: unknown section. Sections are: [plan], [special], [couriers], "
        "[destinations], [routes], [courier_rules], [overrides], [preadvice], [weights]"),
    "missing special chute": (
        SMALL_PLAN.replace("overflow = 8\n", ""),
        "DIR/t.plan.toml:4: [special]: the key 'overflow' is missing. Add overflow = ... to this table"),
    "misspelled spread": (
        SMALL_PLAN.replace('spread = "first_available"', 'spread = "roundrobin"'),
        "DIR/t.plan.toml:23: [destinations.\"C\"] spread = 'roundrobin': unknown spread policy (did you mean "
        "'round_robin'?). Use \"round_robin\" or \"first_available\""),
    "two rules for one courier": (
        SMALL_PLAN + '[[courier_rules]]\ncourier = "JD"\ndestination = "A"\n',
        "DIR/t.plan.toml:43: [[courier_rules]] #2 courier = 'JD': this courier already has a rule on line 36. "
        "Keep one rule per courier"),
    "override of an unknown courier": (
        SMALL_PLAN + '[[overrides]]\ncourier = "SF Express"\nchutes = [7]\n',
        "DIR/t.plan.toml:43: [[overrides]] #2 courier = 'SF Express': no such courier. "
        "Use one of the names under [couriers]"),
    "destination name with a comma": (
        SMALL_PLAN + '[destinations."X,Y"]\nchutes = [1]\n',
        "DIR/t.plan.toml:42: [destinations.\"X,Y\"]: a destination name cannot be empty, contain a comma or "
        "start or end with spaces. Pre-advice files are 'waybill,destination' lines: rename it, e.g. "
        "\"Dongguan village\""),
    "missing pre-advice file": (
        SMALL_PLAN + '[preadvice]\nfiles = ["nope.csv"]\n',
        "DIR/t.plan.toml: [preadvice] files: cannot read the pre-advice file 'DIR/nope.csv': No such file or "
        "directory. Check the name; paths are relative to the plan file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_plan_error_message(case, tmp_path):
    text, expected = CASES[case]
    path = tmp_path / "t.plan.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(path, n_chutes=10)
    assert str(caught.value).replace(str(tmp_path), "DIR") == expected


def test_error_parts_are_attributes(tmp_path):
    path = tmp_path / "t.plan.toml"
    path.write_text(CASES["misspelled destination"][0], encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(path, n_chutes=10)
    err = caught.value
    assert (err.line, err.key, err.value, err.problem) == (26, "[[routes]] #1 destination", "b", "no such destination")


def test_chute_count_of_the_line_is_checked(tmp_path):
    path = tmp_path / "t.plan.toml"
    path.write_text(SMALL_PLAN, encoding="utf-8")
    with pytest.raises(PlanError, match=r"the line must have 1\.\.999 chutes, not 0"):
        load_plan(path, n_chutes=0)
    with pytest.raises(PlanError, match=r"\[special\] no_read = 10: a chute number must be a whole number from 1 to 8"):
        load_plan(path, n_chutes=8)


def test_missing_plan_file(tmp_path):
    with pytest.raises(PlanError) as caught:
        load_plan(tmp_path / "gone.plan.toml", n_chutes=10)
    assert str(caught.value).replace(str(tmp_path), "DIR") == (
        "DIR/gone.plan.toml: the plan file does not exist. Check the path, or copy one from configs/plans/")


def test_duplicate_override_names_the_first_one(tmp_path):
    path = tmp_path / "t.plan.toml"
    path.write_text(SMALL_PLAN + '[[overrides]]\ncourier = "SF"\nchutes = [6]\n', encoding="utf-8")
    with pytest.raises(PlanError) as caught:
        load_plan(path, n_chutes=10)
    assert str(caught.value).replace(str(tmp_path), "DIR") == (
        "DIR/t.plan.toml:43: [[overrides]] #2 courier = 'SF': an override for this courier is already on line 39. "
        "Keep one override per courier and destination")


def test_a_bom_is_skipped_and_line_numbers_stay_right(tmp_path):
    path = tmp_path / "t.plan.toml"
    path.write_bytes(b"\xef\xbb\xbf" + CASES["misspelled destination"][0].encode("utf-8"))
    with pytest.raises(PlanError) as caught:
        load_plan(path, n_chutes=10)
    assert str(caught.value).replace(str(tmp_path), "DIR") == CASES["misspelled destination"][1]
    path.write_bytes(b"\xef\xbb\xbf" + SMALL_PLAN.encode("utf-8"))
    assert load_plan(path, n_chutes=10).version == "t1"


def test_bytes_that_are_not_utf8_are_named_with_their_line(tmp_path):
    path = tmp_path / "t.plan.toml"
    path.write_bytes(SMALL_PLAN.encode("utf-8").replace(b'version = "t1"', b'version = "t\xe91"'))
    with pytest.raises(PlanError) as caught:
        load_plan(path, n_chutes=10)
    assert str(caught.value).replace(str(tmp_path), "DIR") == (
        "DIR/t.plan.toml:3: the sort plan is not UTF-8 text (invalid continuation byte at byte 20). Save it as "
        "UTF-8 in the editor")
