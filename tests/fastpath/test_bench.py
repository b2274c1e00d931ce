"""The benchmark command runs end to end on a small workload and prints its JSON report."""
import json

from fastpath import bench


def test_bench_prints_a_complete_json_report(capsys):
    assert bench.main(["--json", "--records", "20000", "--decisions", "3000", "--pure-decisions", "1000"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["compiled_and_pure_agree"] is True
    assert report["plan"] == {**report["plan"], "chutes": 80, "route_rules": 2000}
    assert 19_000 < report["plan"]["preadvice_records"] <= 20_000
    for side in (report["compiled"]["single"], report["pure"]["single"]):
        assert 0 < side["ns_p50"] <= side["ns_p99"] <= side["ns_p999"]
    assert report["build"]["bytes_per_record"] > 8
    assert report["swap"]["during_build"]["decisions"] > 0 and report["swap"]["idle"]["decisions"] > 0
    assert set(report["targets_met"]) == {"compiled_over_pure", "batch_decisions_per_s", "single_p99_ns",
                                          "bytes_per_record", "build_s", "swap_pause_ms"}
