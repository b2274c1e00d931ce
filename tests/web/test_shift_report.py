"""`sortline report` on the records of a simulated shift, and on records with known times."""
import csv
import re
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from edge.report import ReportError, make_report, outcome, parse_when
from tests.conftest import REPO
from tests.web.conftest import ARTIFACTS

pytestmark = pytest.mark.timeout(300)


def test_the_report_of_a_simulated_shift(simulated_shift, tmp_path):
    s = simulated_shift
    start = datetime.fromtimestamp(s.started_wall).replace(second=0, microsecond=0) - timedelta(minutes=1)
    end = datetime.now().replace(microsecond=0) + timedelta(minutes=1)
    out = ARTIFACTS / "shift-report"
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "report", "--from", start.isoformat(), "--to", end.isoformat(),
         "--records", str(s.records_db.parent), "--config", str(s.config_path), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with s.db() as db:
        total, diverted = db.execute("SELECT COUNT(*), SUM(confirmed_result = 'DIVERTED') FROM parcels").fetchone()
        per_chute = dict(db.execute("SELECT confirmed_chute, COUNT(*) FROM parcels "
                                    "WHERE confirmed_chute IS NOT NULL GROUP BY confirmed_chute").fetchall())
        no_read = db.execute("SELECT COUNT(*) FROM parcels WHERE reason = 'NO_READ'").fetchone()[0]
    with open(out / "parcels.csv", encoding="utf-8-sig", newline="") as f:
        parcels = list(csv.DictReader(f))
    with open(out / "summary.csv", encoding="utf-8-sig", newline="") as f:
        quarters = list(csv.DictReader(f))
    assert len(parcels) == total == s.sim_report["parcels"]
    assert sum(int(q["parcels"]) for q in quarters) == total
    assert all(q["start_local"][-2:] in ("00", "15", "30", "45") for q in quarters)
    assert sum(p["outcome"] == "NO_READ" for p in parcels) == no_read
    page = (out / "report.html").read_text(encoding="utf-8")
    # Five charts, all inline: nothing is fetched from anywhere.
    assert page.count("<svg") == 5
    assert not re.search(r'(src|href)="(https?:)?//', page)
    for heading in ("每15分钟处理量", "Throughput per 15 minutes", "各格口包裹数", "扫描到决策耗时分位数"):
        assert heading in page
    for chute, n in per_chute.items():
        assert f"<title>{chute}: {n}</title>" in page
    assert f"{total} parcels" in done.stdout
    if s.acted is not None:      # the chute disabled from the screen is in the report's logbook
        assert f"disable chute {s.chute}" in page


def _records_with_known_times(folder, times_and_reasons):
    from edge.records import Records
    from fastpath.decision import Decision, Reason
    from vision.result import LabelRead
    records = Records(folder)
    for tracking, (wall, reason, result) in enumerate(times_and_reasons, 1):
        read = LabelRead(("SF1234567890123",), None, "SF") if reason != "NO_READ" else LabelRead((), None, None)
        records.decided(plc_boot=1, tracking=tracking, scan_seq=tracking, read=read,
                        decision=Decision(5, Reason[reason], "SF", "Qicun"), plan_version="p1",
                        times={"total_ms": 10.0 * tracking})
        records.confirmed(1, tracking, 5 if result == "DIVERTED" else 24, result)
    records.flush()
    for tracking, (wall, _, _) in enumerate(times_and_reasons, 1):
        records.db.execute("UPDATE parcels SET scanned_wall = ? WHERE tracking = ?", (wall, tracking))
    records.close()


def test_the_period_and_the_quarters_follow_the_clock(tmp_path):
    t0 = datetime(2026, 11, 28, 6, 0).timestamp()
    _records_with_known_times(tmp_path / "records", [
        (t0 - 60, "PREADVICE", "DIVERTED"),          # before the shift: left out
        (t0 + 60, "PREADVICE", "DIVERTED"),
        (t0 + 14 * 60, "NO_READ", "DIVERTED"),
        (t0 + 16 * 60, "PREADVICE", "LATE"),
        (t0 + 3600, "PREADVICE", "DIVERTED"),        # the end is not included
    ])
    shift, files = make_report(tmp_path / "records" / "parcels.sqlite", t0, t0 + 3600, tmp_path / "out")
    assert [(b.start.strftime("%H:%M"), b.parcels, b.read) for b in shift.buckets] == [
        ("06:00", 2, 1), ("06:15", 1, 1), ("06:30", 0, 0), ("06:45", 0, 0)]
    assert shift.outcomes == {"SORTED": 1, "NO_READ": 1, "LATE": 1}
    assert shift.per_chute == {5: 2, 24: 1}
    assert shift.latency_ms["p50"] == pytest.approx(30.0)
    assert [f.name for f in files] == ["parcels.csv", "summary.csv", "couriers.csv", "report.html"]


def test_an_empty_period_still_gives_a_page(tmp_path):
    _records_with_known_times(tmp_path / "records", [])
    t0 = datetime(2026, 11, 28, 22, 0).timestamp()
    shift, _ = make_report(tmp_path / "records" / "parcels.sqlite", t0, t0 + 1800, tmp_path / "out")
    assert shift.parcels == [] and "该时段没有包裹记录" in (tmp_path / "out" / "report.html").read_text()


def test_mistakes_in_the_command_are_explained(tmp_path):
    with pytest.raises(ReportError, match="write it like 2026-11-28T06:00"):
        parse_when("28.11.2026 06:00", "--from")
    with pytest.raises(ReportError, match="no parcel records there"):
        make_report(tmp_path / "none" / "parcels.sqlite", 0, 10, tmp_path / "out")
    with pytest.raises(ReportError, match="--to must be later"):
        make_report(tmp_path / "none" / "parcels.sqlite", 10, 0, tmp_path / "out")


def test_each_parcel_counts_once_under_its_first_failure():
    assert outcome("PREADVICE", "DIVERTED") == "SORTED"
    assert outcome("PREADVICE", "CHUTE_UNAVAILABLE") == "CHUTE_UNAVAILABLE"
    assert outcome("NO_READ", "LATE") == "NO_READ"
    assert outcome("ROUTING_CODE", None) == "UNCONFIRMED"
