import json

import cv2
import pytest

from vision import cli
from vision.bench import tiers as bench
from vision.synth import random_truth, render_label


def test_read_label_cli(tmp_path, rng, capsys):
    truth = random_truth(rng)
    good = tmp_path / "parcel.png"
    cv2.imwrite(str(good), render_label(truth, rng))
    bad = tmp_path / "cut.jpg"
    bad.write_bytes(good.read_bytes()[:500])
    # A budget that a machine busy with other work still leaves the read (a stage whose estimate
    # does not fit the time left is not started: vision/deadline.py).
    assert cli.main([str(good), "--budget-ms", "1000"]) == 0
    assert truth.waybill in capsys.readouterr().out
    assert cli.main([str(good), str(bad), "--json", "--budget-ms", "1000"]) == 1
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert lines[0]["waybills"] == [truth.waybill]
    assert lines[1]["waybills"] == [] and lines[1]["no_read_reason"].startswith("bad image")


def test_bench_small_run(capsys):
    assert bench.main(["--json", "--per-tier", "4", "--tiers", "clean,damaged", "--core", "-1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["tiers"]) == {"clean", "damaged"}
    clean = report["tiers"]["clean"]
    assert clean["full"]["parcels"] == 4 and clean["barcode_only"]["read_rate"] == 1.0
    assert report["tiers"]["damaged"]["barcode_only"]["read_rate"] == 0.0
    for key in ("read_rate", "wrong_read_rate", "latency_ms_p50", "latency_ms_p99", "multi_reads"):
        assert key in clean["full"]


def test_bench_compares_routing_floors_and_lists_its_misreads(capsys, tmp_path):
    from vision import fusion, routing_code
    floor = fusion.ROUTING_MIN_CONFIDENCE
    misreads = tmp_path / "misreads.jsonl"
    assert bench.main(["--json", "--per-tier", "6", "--tiers", "noisy", "--core", "-1", "--seed", "4242",
                       "--budget-ms", "1000", "--routing-floors", "0.97,0.5,0.9", "--misreads", str(misreads)]) == 0
    report = json.loads(capsys.readouterr().out)
    floors = report["tiers"]["noisy"]["routing_floors"]
    assert list(floors) == ["0.5", "0.9", "0.97"]
    counts = [floors[f]["right"] + floors[f]["wrong"] for f in floors]
    assert counts == sorted(counts, reverse=True) and counts[0] > 0
    assert report["routing_shapes"] == ["3-3-2", "3-3-2-2"] and misreads.exists()
    # The run's floor and shapes do not outlive it.
    assert fusion.ROUTING_MIN_CONFIDENCE == floor and routing_code.is_routing_code("571-J25-0")


def test_bench_refuses_floors_that_are_not_numbers(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--routing-floors", "high"])
    assert "is not a list of numbers" in capsys.readouterr().err
