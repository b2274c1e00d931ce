"""The scale's weighing in the parcel records (format 3), and records of format 2 brought forward."""
import sqlite3

import pytest

from edge.records import SCHEMA_VERSION, Records
from edge.scale import Weighing
from fastpath.decision import Decision, Reason
from tests.edge.test_records_files import READ, SCHEMA_V1, kept_files

pytestmark = pytest.mark.timeout(60)

# Format 2: format 1 without UNIQUE (plc_boot, tracking), numbered.
SCHEMA_V2 = SCHEMA_V1.replace(",\n    UNIQUE (plc_boot, tracking)", "") + "PRAGMA user_version = 2;\n"


def decide(records, tracking, weighing=None, reason=Reason.PREADVICE, chute=5):
    return records.decided(plc_boot=1, tracking=tracking, scan_seq=tracking, read=READ,
                           decision=Decision(chute, reason, "SF", "Dangcheng"), plan_version="v1", times={},
                           weighing=weighing)


def test_weight_sides_and_volume_are_recorded_and_null_without_a_weighing(tmp_path):
    r = Records(tmp_path)
    try:
        decide(r, 1, Weighing(1, 31.5, (1200.0, 800.0, 600.0), 0.0), Reason.OVERWEIGHT, 6)
        decide(r, 2, Weighing(2, 0.85, None, 0.0))
        decide(r, 3)
        assert r.flush()
        rows = r.db.execute("SELECT tracking, reason, weight_kg, length_mm, width_mm, height_mm, volume_l FROM parcels"
                            " ORDER BY tracking").fetchall()
        assert rows == [(1, "OVERWEIGHT", 31.5, 1200.0, 800.0, 600.0, 576.0),
                        (2, "PREADVICE", 0.85, None, None, None, None),
                        (3, "PREADVICE", None, None, None, None, None)]
        decide(r, 3, Weighing(3, 2.0, (300.0, 200.0, 100.0), 0.0))     # decided again after a restart
        assert r.flush()
        assert r.db.execute("SELECT count(*), max(weight_kg), max(volume_l) FROM parcels WHERE tracking = 3"
                            ).fetchone() == (1, 2.0, 6.0)
    finally:
        r.close()


def test_version_2_records_get_the_weight_columns_and_keep_their_rows(tmp_path):
    db = sqlite3.connect(tmp_path / "parcels.sqlite")
    db.executescript(SCHEMA_V2)
    db.executemany("INSERT INTO parcels (plc_boot, tracking, scan_seq, scanned_wall, waybills, chute, reason,"
                   " plan_version, sent, confirmed_result) VALUES (7, ?, ?, ?, '[\"SF1\"]', 3, 'PREADVICE', 'p', 1,"
                   " 'DIVERTED')", [(t, t, 1_700_000_000.0 + t) for t in range(1, 51)])
    db.commit()
    db.close()
    r = Records(tmp_path, reuse_after_s=600)
    try:
        assert not r.alarms.active() and not any(kept_files(tmp_path, k) for k in ("corrupt", "foreign", "newer"))
        assert r.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        rows = r.db.execute("SELECT tracking, sent, confirmed_result, weight_kg, volume_l FROM parcels ORDER BY id"
                            ).fetchall()
        assert rows == [(t, 1, "DIVERTED", None, None) for t in range(1, 51)]
        decide(r, 100, Weighing(100, 4.25, (400.0, 300.0, 200.0), 0.0))
        assert r.flush()
        assert r.db.execute("SELECT weight_kg, volume_l FROM parcels WHERE tracking = 100").fetchone() == (4.25, 24.0)
    finally:
        r.close()


def test_version_1_records_come_to_version_3_with_the_weight_columns_once(tmp_path):
    db = sqlite3.connect(tmp_path / "parcels.sqlite")
    db.executescript(SCHEMA_V1)
    db.execute("INSERT INTO parcels (plc_boot, tracking, scan_seq, scanned_wall, waybills, chute, reason,"
               " plan_version) VALUES (7, 1, 1, 1.0, '[]', 3, 'NO_READ', 'p')")
    db.commit()
    db.close()
    r = Records(tmp_path)
    try:
        columns = [row[1] for row in r.db.execute("PRAGMA table_info(parcels)")]
        assert columns.count("weight_kg") == 1 and "volume_l" in columns
        assert r.db.execute("SELECT tracking, weight_kg FROM parcels").fetchall() == [(1, None)]
    finally:
        r.close()
