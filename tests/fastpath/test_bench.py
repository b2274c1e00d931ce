"""The benchmark command runs end to end on a small workload and prints its JSON report."""
import json

from fastpath.bench import routing as bench


def test_bench_prints_a_complete_json_report(capsys):
    assert bench.main(["--json", "--records", "20000", "--decisions", "3000", "--pure-decisions", "1000",
                       "--reloads", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["compiled_and_pure_agree"] is True
    assert report["plan"] == {**report["plan"], "chutes": 80, "route_rules": 2000}
    assert 19_000 < report["plan"]["preadvice_records"] <= 20_000
    for side in (report["compiled"]["single"], report["pure"]["single"]):
        assert 0 < side["ns_p50"] <= side["ns_p99"] <= side["ns_p999"]
        loop = side["with_loop"]
        assert 0 < loop["ns_p50"] <= loop["ns_p99"] <= loop["ns_p999"]
    assert 0 < report["noop_harness"]["ns_p50"] <= report["noop_harness"]["with_loop"]["ns_p99"]
    assert report["build"]["bytes_per_record"] > 8
    reload = report["reload"]
    for mode in ("process", "thread"):
        [one] = reload[mode]["reloads"]
        assert one["decisions"] > 0 and one["build_s"] > 0
        assert 0 < one["longest_held_ms"] and 0 < one["longest_gap_ms"]
    process = reload["process"]["reloads"][0]
    assert process["loop_slices"] > 0 and 0 < process["longest_loop_slice_cpu_ms"]
    assert report["machine"]["steal_share"] is None or 0 <= report["machine"]["steal_share"] < 1
    for baseline in ("idle", "busy"):
        assert all(w["decisions"] > 0 for w in reload[baseline]["windows"])
        assert reload[baseline]["median_longest_gap_ms"] > 0
    assert set(reload["ratio_to_idle"]) == set(reload["ratio_to_busy"]) == {"process", "thread"}
    assert set(report["targets_met"]) == {"compiled_over_pure", "batch_decisions_per_s", "single_p99_ns",
                                          "bytes_per_record", "build_s", "swap_pause_ms"}


def test_bench_reload_part_alone(capsys):
    assert bench.main(["--json", "--parts", "reload", "--records", "5000", "--reloads", "1",
                       "--reload-modes", "process"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "compiled" not in report and "thread" not in report["reload"]
    assert report["reload"]["process"]["reloads"][0]["decisions"] > 0
    assert set(report["targets_met"]) == {"bytes_per_record", "build_s", "swap_pause_ms"}
