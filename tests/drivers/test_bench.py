"""`sortline bench link` runs end to end on a few parcels and prints what docs/perf-link.md quotes."""
import json

import pytest

from edge.cli import main as sortline

pytestmark = pytest.mark.timeout(90)


# The OPC UA run takes as long again (its simulated PLC builds its address space first);
# docs/perf-link.md records one.
@pytest.mark.parametrize("protocol, bare", [("modbus", "bare_pymodbus")])
def test_bench_link_prints_round_trips_throughput_and_the_bare_library(protocol, bare, capsys):
    assert sortline(["bench", "link", "--protocol", protocol, "--events", "60", "--gap-ms", "5",
                     "--sweep-events", "20", "--poll-sweep", "2", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    link = report["link"]
    assert link["not_assigned"] == 0 and link["event_to_assignment_ms"]["n"] == 60
    assert 0 < link["event_to_link_ms"]["p50"] <= link["event_to_assignment_ms"]["p50"]
    assert report["throughput"]["assigned"] == 60 and report["throughput"]["events_per_s"] > 0
    assert bare in report
    if protocol == "modbus":
        assert set(report["poll_interval_ms_effect"]) == {"gap_ms", "2.0", "10.0"}
        assert report[bare]["read_10_registers_ms"]["n"] == 60
    else:
        assert report[bare]["missed_changes"] == 0
