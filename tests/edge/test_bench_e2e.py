"""`sortline bench e2e` end to end on a short run: the simulated PLC and the controller as
separate processes, real Modbus TCP on 127.0.0.1, real label reading."""
import json

import pytest

from edge.bench import e2e as bench


def test_bench_e2e_prints_what_the_plc_saw(capsys):
    assert bench.main(["--rate", "20000", "--parcels", "40", "--vision-budget-ms", "60", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parcels"] == 40 and report["lost"] == 0 and report["deadline_misses"] == 0
    assert report["vision_budget_ms"] == 60
    assert report["correct"] >= 39 and sum(report["by_reason"].values()) == 40
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"] < report["decision_budget_ms"]
    assert 0 < report["machine_cpu_busy_share"] <= 1
    assert report["controller_stages_ms"]["read_ms"]["p50"] > 0
    quiet = report["latency_ms_while_host_quiet"]
    assert 0 <= quiet["parcels"] <= 40 and (quiet["parcels"] == 0 or quiet["p50"] <= quiet["p99"] <= lat["max"])


def test_find_max_steps_through_the_given_rates(capsys):
    assert bench.main(["--find-max", "--rates", "20000", "--step-s", "1", "--vision-budget-ms", "60", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["rate_per_h"] for r in report["runs"]] == [20000]
    assert report["runs"][0]["parcels"] == 100                 # a step is never shorter than 100 parcels
    assert report["highest_rate_without_misses_per_h"] == 20000
    assert report["limiting_stage"] in ("image_ms", "read_ms", "decide_ms")


def test_rates_out_of_order_are_refused_with_an_example(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--find-max", "--rates", "400000,260000"])
    assert "rising order, e.g. 200000,260000,320000" in capsys.readouterr().err


def test_a_pre_advice_share_leaves_parcels_to_the_label(capsys):
    """Parcels out of the pre-advice file are decided from what the controller reads on the label."""
    assert bench.main(["--rate", "20000", "--parcels", "60", "--preadvice-share", "0.5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    paths = report["decision_paths"]
    assert report["preadvice_share"] == 0.5 and 0.25 <= paths["preadvised_share"] <= 0.75
    by_path = paths["by_path"]
    assert sum(p["parcels"] for p in by_path.values()) == 60
    # The controller found none of the others in its pre-advice: they really were left out.
    assert "PREADVICE" not in by_path["routing_code"]["decided_by"]
    assert set(by_path["preadvice"]["decided_by"]) <= {"PREADVICE", "LATE"}
    assert by_path["routing_code"]["decided_by"].get("ROUTING_CODE", 0) > 0
    # Both shapes of routing code the plan routes are printed: three segments and EMS's four.
    assert set(paths["routing_code_by_shape"]) == {"3-3-2", "3-2-2-2"}
    readable = paths["readable_label"]
    assert readable["parcels"] == 60 and readable["right"] == report["correct"]
    assert readable["wrong_chute"] == 0, paths["wrong_chute_examples"]


def test_a_share_outside_0_to_1_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--preadvice-share", "60"])
    assert "not a share from 0 to 1; write e.g. 0.6" in capsys.readouterr().err


def dense_trace(tmp_path):
    """30 parcels of 500 mm every 400 ms, and a burst of three 100 ms apart: at 2 m/s a parcel and
    the 100 mm gap need 300 ms, so the burst's second and third wait 200 and 400 ms."""
    times = [10 + 0.4 * i for i in range(27)] + [21.0, 21.1, 21.2]
    path = tmp_path / "site-log.csv"
    path.write_text("# another site's morning\nt_s,length_mm,weight_kg\n" +
                    "".join(f"{t:.2f},500,{1 + i % 5}\n" for i, t in enumerate(times)))
    return path


def test_a_trace_denser_than_the_belt_is_refused_before_anything_starts(tmp_path, capsys):
    with pytest.raises(SystemExit, match=r"site-log.csv:31: .*--queue-at-induction"):
        bench.main(["--trace", str(dense_trace(tmp_path)), "--json"])


def test_a_trace_is_replayed_with_its_parcels_queued_at_the_induction(tmp_path, capsys):
    assert bench.main(["--trace", str(dense_trace(tmp_path)), "--queue-at-induction", "--vision-budget-ms", "60",
                       "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parcels"] == 30 and report["lost"] == 0
    queue = report["induction_queue"]
    assert (queue["delayed"], queue["delay_max_s"]) == (2, pytest.approx(0.4, abs=1e-3))
    # 30 parcels over 11.6 s of belt once the burst is queued.
    assert report["rate_per_h"] == pytest.approx(29 * 3600 / 11.6, rel=1e-3)
    assert report["decision_paths"]["by_path"]["preadvice"]["parcels"] + \
        report["decision_paths"]["by_path"].get("courier_override", {}).get("parcels", 0) == 30


def test_outcomes_tell_a_misread_from_an_exception_and_a_courier_fallback():
    from edge.bench.paths import exception_chutes, outcome
    exceptions = exception_chutes({"no_read": 24, "no_rule": 23, "overflow": 22}, end_chute=24)
    base = {"correct": False, "result": "DIVERTED", "reason": "ROUTING_CODE", "actual": 5}
    assert outcome({**base, "correct": True}, exceptions) == "right"
    assert outcome(base, exceptions) == "wrong_chute"
    assert outcome({**base, "actual": 23, "reason": "NO_RULE"}, exceptions) == "exception_chute"
    assert outcome({**base, "result": "LATE", "actual": 24}, exceptions) == "exception_chute"
    assert outcome({**base, "reason": "COURIER_RULE", "actual": 19}, exceptions) == "courier_rule"
    assert outcome({**base, "result": "LOST", "actual": None}, exceptions) == "lost"


def test_label_misses_say_whether_the_code_was_read_and_how_long_the_read_took():
    from edge.bench.paths import label_misses
    exceptions = frozenset({23, 24})
    rows = [{"plc_boot": 7, "tracking": t, "path": path, "correct": correct, "result": "DIVERTED",
             "reason": reason, "actual": actual}
            for t, path, correct, reason, actual in [
                (1, "ROUTING_CODE", False, "NO_RULE", 23), (2, "ROUTING_CODE", False, "ROUTING_CODE", 5),
                (3, "ROUTING_CODE", True, "ROUTING_CODE", 7), (4, "PREADVICE", False, "NO_READ", 24)]]
    reads = {(7, 1): {"routing_code": None, "read_ms": 80.5}, (7, 2): {"routing_code": "312-Q02-15", "read_ms": 20.0},
             (7, 3): {"routing_code": "312-Q02-05", "read_ms": 30.0}, (7, 4): {"routing_code": None, "read_ms": 90.0}}
    got = label_misses(rows, exceptions, reads, 80.0)
    assert (got["parcels"], got["routing_code_not_read"], got["reads_at_budget"]) == (2, 1, 1)
    assert (got["read_ms_p50"], got["read_ms_max"]) == (80.5, 80.5)
