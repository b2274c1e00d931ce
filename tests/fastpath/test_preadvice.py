"""Pre-advice files: the compiled scanner and the Python rules read them the same way."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastpath import PlanError, Reason, Router, load_plan
from tests.fastpath.conftest import SMALL_PLAN

PLAN = SMALL_PLAN.replace("[destinations.C]", '[destinations."东关村"]\nchutes = [6]\n[destinations.C]') + \
    '[preadvice]\nfiles = ["pre.csv", "more.csv"]\n'


@pytest.fixture(params=["compiled loader", "python loader"])
def loader(request, monkeypatch):
    if request.param == "python loader":
        monkeypatch.setenv("SORTLINE_PURE_PYTHON", "1")
    else:
        monkeypatch.delenv("SORTLINE_PURE_PYTHON", raising=False)
    return request.param


def _load(tmp_path, pre, more=b""):
    (tmp_path / "t.plan.toml").write_text(PLAN, encoding="utf-8")
    (tmp_path / "pre.csv").write_bytes(pre)
    (tmp_path / "more.csv").write_bytes(more)
    return load_plan(tmp_path / "t.plan.toml", n_chutes=10)


def test_records_comments_header_and_odd_lines(loader, tmp_path):
    pre = ("# sent 2026-11-28\r\nWaybill, Destination\r\n\r\n  sf1234567890123 ,  A \r\n"
           "JDX123456789012,东关村\n7312345678901,B\nodd number 7,C\n\tRR123456785CN\t,B").encode("utf-8")
    plan = _load(tmp_path, pre, b"7312345678901,C\n")
    assert plan.preadvice_count == 5
    assert plan.warnings == [
        f"1 pre-advice records repeat a waybill with another destination; the later record is used "
        f"(first: {tmp_path / 'more.csv'}:1)"]
    router = Router(plan, pure=True)
    assert router.decide(["SF1234567890123"], None).destination == "A"
    assert router.decide(["JDX123456789012"], None).destination == "东关村"
    assert router.decide(["7312345678901"], None).destination == "C"
    assert router.decide(["ODD NUMBER 7"], None)[1:] == (Reason.PREADVICE, None, "C")
    assert router.decide(["RR123456785CN"], None).destination == "B"


def test_bad_lines_are_listed(loader, tmp_path):
    pre = b"waybill,destination\nSF1234567890123,A\nJDX1,Q\n\nonly-one-field\n,B\nSF1,A,B\n\xff\xfe,A\n"
    with pytest.raises(PlanError) as caught:
        _load(tmp_path, pre)
    assert str(caught.value).replace(str(tmp_path), "DIR") == (
        "DIR/pre.csv:3: no destination 'Q' in the plan (4 more bad lines: pre.csv:5, pre.csv:6, pre.csv:7, "
        "pre.csv:8). Use a name from the plan's [destinations], or add that destination")


def test_first_line_is_a_record_when_it_is_not_the_header(loader, tmp_path):
    plan = _load(tmp_path, b"SF1234567890123,B\nSF1234567890124,C")
    assert plan.preadvice_count == 2 and plan.warnings == []


@st.composite
def csv_files(draw):
    pieces = st.sampled_from(["SF1234567890123", "sf123", "7312345678901", "JDX123456789012", "RR123456785CN",
                              "A", "B", "C", "东关村", " ", ",", "\t", "#", "\r", "é", "\x00", "-", "00000000000000000001"])
    lines = draw(st.lists(st.lists(pieces, max_size=5).map("".join), max_size=30))
    return "\n".join(lines).encode("utf-8") + draw(st.sampled_from([b"", b"\n", b"\xff"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=csv_files())
def test_compiled_scanner_matches_python_rules(data, tmp_path, monkeypatch):
    results = []
    for pure in ("1", ""):
        monkeypatch.setenv("SORTLINE_PURE_PYTHON", pure)
        try:
            plan = _load(tmp_path, data)
        except PlanError as exc:
            results.append(("error", str(exc)))
            continue
        table = plan.preadvice.table
        records = {int(k): int(v) for k, v in zip(table.keys, table.values) if k}
        results.append(("plan", records, plan.preadvice.slow, plan.warnings))
    assert results[0] == results[1]


def test_a_generated_file_loads_the_same_records_as_the_arrays(tmp_path):
    import numpy as np

    from fastpath import waybill
    from fastpath.bench import data as bench_data
    work = bench_data.make_workload(3, 80, 100, 5000)
    csv = tmp_path / "big.csv"
    bench_data.write_csv(csv, work.keys, work.destinations)
    plan_path = tmp_path / "big.plan.toml"
    plan_path.write_text(bench_data.plan_text_with_preadvice(work.plan_text, "big.csv"), encoding="utf-8")
    from_file = load_plan(plan_path, 80)
    from_arrays = bench_data.build_plan(plan_path, 80, work.keys, work.destinations)
    assert from_file.preadvice_count == from_arrays.preadvice_count > 4900
    router_file, router_arrays = Router(from_file, pure=False), Router(from_arrays, pure=False)
    for code in np.random.default_rng(1).choice(work.keys, 300):
        number = waybill.decode(int(code)).decode()
        assert router_file.decide([number], None) == router_arrays.decide([number], None)
