"""`sortline bench e2e` end to end on a short run: the simulated PLC and the controller as
separate processes, real Modbus TCP on 127.0.0.1, real label reading."""
import json

import pytest

from edge import bench


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
