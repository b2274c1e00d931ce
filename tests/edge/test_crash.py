"""kill -9 of the controller in the middle of a shift, and a restart: no decision the PLC has is
missing from the records, none is recorded twice or sent twice, and the parcels the PLC rejected
on its own while the controller was down are recorded as such.

`sortline bench crash --parcels 5000` runs the same check on a whole shift."""
import pytest

from edge.bench.crash import crash_run

pytestmark = pytest.mark.timeout(400)


async def test_kill_minus_9_mid_shift_loses_and_doubles_nothing():
    r = await crash_run(parcels=300, rate=20000, outage_s=1.5)
    assert r["killed_after_decisions"] >= 150 and r["lost"] == 0 and r["landed"] == 300
    assert r["assigned_without_record"] == 0, r["examples"]
    assert r["records_duplicated"] == 0 and r["duplicate_assignments_refused_by_plc"] == 0
    assert r["record_chute_differs"] == 0, r["examples"]
    # The outage was long enough for the PLC to reject parcels on its own, and each was recorded.
    assert r["rejected_by_plc"] > 0
    assert r["rejected_not_recorded"] == 0, r["examples"]
