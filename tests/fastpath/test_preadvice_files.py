"""Pre-advice files as couriers' exports really come: Excel's BOM, UTF-16, a field run wild, files
read in blocks, and the memory a line has for them."""
import codecs
import time

import pytest
from hypothesis import HealthCheck, given, settings

from fastpath import PlanError, load_plan, text_files, waybill
from tests.fastpath.test_preadvice import PLAN, _load, csv_files, loader  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(60)


def records_of(plan):
    table = plan.preadvice.table
    return {int(k): int(v) for k, v in zip(table.keys, table.values) if k}, plan.preadvice.slow, plan.warnings


def outcome(tmp_path, pre, more=b""):
    try:
        return ("plan",) + records_of(_load(tmp_path, pre, more))
    except PlanError as exc:
        return ("error", str(exc))


# -- a waybill field of megabytes ---------------------------------------------------------------------
def test_encoding_a_read_of_megabytes_takes_no_time():
    started = time.perf_counter()
    for read in (b"A" * 5_000_000, b"1" * 5_000_000, b"SF1" + b"B" * 5_000_000):
        assert waybill.encode(read) == 0
    assert time.perf_counter() - started < 0.5
    assert waybill.encode(b"SF1234567890123") == waybill.encode(b"SF1234567890123") > 0


def test_a_waybill_of_five_megabytes_is_a_bad_line_and_the_file_is_still_read_to_its_end(loader, tmp_path):
    pre = (b"waybill,destination\nSF1234567890123,A\n" + b"SF" + b"7" * 5_000_000 + b",A\n"
           + b"JDX123456789012,B\nSF1234567890124,Nowhere\n" + b"X" * 41 + b",C\n7312345678901,C\n")
    started = time.perf_counter()
    with pytest.raises(PlanError) as caught:
        _load(tmp_path, pre)
    assert time.perf_counter() - started < 10
    assert str(caught.value).replace(str(tmp_path), "DIR") == (
        "DIR/pre.csv:3: the waybill 'SF7777777777777777777777'... (5,000,002 characters) is longer than a waybill "
        "(40 characters at most) (2 more bad lines: pre.csv:5, pre.csv:6). Check the export: one record a line, "
        "the waybill number, a comma, the destination")


def test_a_waybill_of_forty_characters_is_taken(loader, tmp_path):
    plan = _load(tmp_path, b"X" * 40 + b",C\n")
    assert plan.preadvice_destination("X" * 40) == "C"


def test_a_destination_of_megabytes_is_shown_shortened(loader, tmp_path):
    with pytest.raises(PlanError) as caught:
        _load(tmp_path, b"SF1234567890123," + b"Q" * 3_000_000 + b"\n")
    assert str(caught.value).replace(str(tmp_path), "DIR") == (
        "DIR/pre.csv:1: no destination 'QQQQQQQQQQQQQQQQQQQQQQQQ'... (3,000,000 characters) in the plan. Use a name "
        "from the plan's [destinations], or add that destination")


# -- what Windows programs save ----------------------------------------------------------------------
def test_an_excel_csv_with_a_bom_and_a_header_loads(loader, tmp_path):
    plan = _load(tmp_path, codecs.BOM_UTF8 + b"waybill,destination\r\nSF1234567890123,A\r\n")
    assert plan.preadvice_count == 1 and plan.preadvice_destination("SF1234567890123") == "A"


def test_a_bom_before_the_first_record_is_not_part_of_the_waybill(loader, tmp_path):
    plan = _load(tmp_path, codecs.BOM_UTF8 + b"SF1234567890123,A\nSF1234567890124,B\n")
    assert plan.preadvice_count == 2 and plan.preadvice_destination("SF1234567890123") == "A"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_csv_is_named(tmp_path, encoding):
    with pytest.raises(PlanError) as caught:
        _load(tmp_path, "waybill,destination\r\nSF1234567890123,A\r\n".encode(encoding))
    assert str(caught.value).replace(str(tmp_path), "DIR") == (
        'DIR/pre.csv: the pre-advice file is UTF-16 text, not UTF-8. Save it as UTF-8: in Excel, Save As "CSV '
        'UTF-8 (Comma delimited)"')


# -- read in blocks -------------------------------------------------------------------------------------
EDGES = [
    b"",
    b"waybill,destination\n",
    b"# only a comment\n\n# and another\nwaybill,destination\nSF1234567890123,A\n",
    b"\n\n\nSF1234567890123,A\nwaybill,destination\n",
    b"SF1234567890123,A\r\nJDX123456789012,B\r\nbad line\r\n7312345678901,C",
    codecs.BOM_UTF8 + b"Waybill, Destination\nRR123456785CN,B\n" + b"7312345678901,C\n" * 50,
]


@pytest.mark.parametrize("block_bytes", [1, 2, 7, 64])
@pytest.mark.parametrize("data", EDGES, ids=range(len(EDGES)))
def test_files_read_in_small_blocks_give_the_same_plan(loader, tmp_path, monkeypatch, data, block_bytes):
    whole = outcome(tmp_path, data, b"SF1234567890123,C\n")
    monkeypatch.setattr(text_files, "BLOCK_BYTES", block_bytes)
    assert outcome(tmp_path, data, b"SF1234567890123,C\n") == whole


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=csv_files())
def test_any_file_read_in_blocks_gives_the_same_plan(data, tmp_path, monkeypatch):
    monkeypatch.setattr(text_files, "BLOCK_BYTES", 1 << 20)
    whole = outcome(tmp_path, data)
    monkeypatch.setattr(text_files, "BLOCK_BYTES", 5)
    assert outcome(tmp_path, data) == whole


# -- the memory a line has ------------------------------------------------------------------------------
def test_a_preadvice_file_above_the_limit_is_refused_before_it_is_read(tmp_path):
    (tmp_path / "t.plan.toml").write_text(PLAN, encoding="utf-8")
    (tmp_path / "more.csv").write_bytes(b"")
    (tmp_path / "pre.csv").write_bytes(b"")
    import os
    os.truncate(tmp_path / "pre.csv", 2_100_000_000)      # sparse: takes no room, its size is what counts
    started = time.perf_counter()
    with pytest.raises(PlanError) as caught:
        load_plan(tmp_path / "t.plan.toml", n_chutes=10)
    assert time.perf_counter() - started < 5
    assert str(caught.value).replace(str(tmp_path), "DIR") == (
        "DIR/pre.csv: the pre-advice file is 2.1 GB, more than a pre-advice file may be (2 GB, all the plan's "
        f"pre-advice files together). {text_files.PREADVICE.too_big_remedy}")


def test_the_limit_holds_for_all_the_plans_preadvice_files_together(tmp_path, monkeypatch):
    monkeypatch.setattr(text_files, "PREADVICE", text_files.Kind("pre-advice file", 60, "60 bytes", "Make room"))
    with pytest.raises(PlanError) as caught:
        _load(tmp_path, b"SF1234567890123,A\nSF1234567890124,A\n", b"SF1234567890125,A\nSF1234567890126,A\n")
    assert str(caught.value).replace(str(tmp_path), "DIR") == (
        "DIR/more.csv: the pre-advice file is 36 bytes; with the plan's other pre-advice files (36 bytes) that is "
        "more than a line takes (60 bytes). Make room")
