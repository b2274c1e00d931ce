"""What the records find in their folder at start: a damaged, truncated, foreign or newer file is
moved aside (kept unchanged, named for when and why) and a new one started; an older schema is
migrated with its rows; none of it raises or stops sorting. Damage found mid-shift is handled the
same way without any method raising."""
import asyncio
import os
import sqlite3
from types import SimpleNamespace

import pytest

from edge.records import SCHEMA_VERSION, Records
from fastpath import Decision, Reason

pytestmark = pytest.mark.timeout(60)

READ = SimpleNamespace(waybills=("SF1234567890123",), routing_code="312-Q01-07", sources={"waybill": "barcode"},
                       no_read_reason=None)

# The schema shipped before versions were numbered (PRAGMA user_version 0): version 1.
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS parcels (
    id INTEGER PRIMARY KEY,
    plc_boot INTEGER NOT NULL,
    tracking INTEGER NOT NULL,
    scan_seq INTEGER NOT NULL,
    scanned_wall REAL NOT NULL,
    waybills TEXT NOT NULL,
    routing_code TEXT,
    courier TEXT,
    destination TEXT,
    read_sources TEXT,
    no_read_reason TEXT,
    chute INTEGER NOT NULL,
    reason TEXT NOT NULL,
    plan_version TEXT NOT NULL,
    image_ms REAL, read_ms REAL, decide_ms REAL, total_ms REAL,
    sent INTEGER NOT NULL DEFAULT 0,
    confirmed_chute INTEGER,
    confirmed_result TEXT,
    UNIQUE (plc_boot, tracking)
);
CREATE INDEX IF NOT EXISTS parcels_scanned ON parcels (scanned_wall);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY, at_wall REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, detail TEXT
);
"""


def decide(records, tracking, boot=1):
    return records.decided(plc_boot=boot, tracking=tracking, scan_seq=tracking, read=READ,
                           decision=Decision(5, Reason.ROUTING_CODE, "SF", "Dangcheng"), plan_version="v1",
                           times={})


def kept_files(folder, kind):
    """Files moved aside (their -wal and -shm beside them are not counted)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f"parcels.{kind}-")
                  and not p.name.endswith(("-wal", "-shm")))


def count(folder, table="parcels"):
    db = sqlite3.connect(folder / "parcels.sqlite")
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def assert_new_file_works(r, folder):
    decide(r, 1)
    r.sent(1, 1)
    assert r.flush() and r.error is None
    assert count(folder) == 1


def test_garbage_bytes_are_kept_aside_with_their_log_and_a_new_file_started(tmp_path):
    garbage = bytes(range(256)) * 40
    (tmp_path / "parcels.sqlite").write_bytes(garbage)
    (tmp_path / "parcels.sqlite-wal").write_bytes(b"\x01" * 1000)
    r = Records(tmp_path)
    try:
        [kept] = kept_files(tmp_path, "corrupt")
        assert kept.endswith(".sqlite")
        assert (tmp_path / kept).read_bytes() == garbage              # kept unchanged for recovery
        assert (tmp_path / f"{kept}-wal").read_bytes() == b"\x01" * 1000
        alarm = {a.key: a for a in r.alarms.active()}["records_corrupt"]
        assert kept in alarm.cause and "new records file" in alarm.cause and ".recover" in alarm.remedy
        assert_new_file_works(r, tmp_path)
    finally:
        r.close()


def test_a_truncated_file_is_found_damaged_at_start(tmp_path):
    r = Records(tmp_path)
    for t in range(1, 3000):
        decide(r, t)
    r.close()                      # the last connection copies the log into the file
    size = (tmp_path / "parcels.sqlite").stat().st_size
    os.truncate(tmp_path / "parcels.sqlite", size // 2)
    r = Records(tmp_path)
    try:
        assert len(kept_files(tmp_path, "corrupt")) == 1
        assert "malformed" in r.alarms.active()[0].cause
        assert_new_file_works(r, tmp_path)
    finally:
        r.close()


def test_a_folder_in_place_of_the_file_is_moved_aside(tmp_path):
    (tmp_path / "parcels.sqlite").mkdir()
    (tmp_path / "parcels.sqlite" / "notes.txt").write_text("someone's files")
    r = Records(tmp_path)
    try:
        [kept] = kept_files(tmp_path, "foreign")
        assert (tmp_path / kept / "notes.txt").read_text() == "someone's files"
        assert "not parcel records" in r.alarms.active()[0].cause
        assert_new_file_works(r, tmp_path)
    finally:
        r.close()


def test_another_programs_database_is_moved_aside_unchanged(tmp_path):
    db = sqlite3.connect(tmp_path / "parcels.sqlite")
    db.executescript("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT); INSERT INTO orders (item) VALUES ('a');")
    db.close()
    r = Records(tmp_path)
    try:
        [kept] = kept_files(tmp_path, "foreign")
        other = sqlite3.connect(tmp_path / kept)
        assert other.execute("SELECT item FROM orders").fetchall() == [("a",)]
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "delete"     # not switched to WAL
        other.close()
        assert "no parcels table (tables: orders)" in r.alarms.active()[0].cause
        assert_new_file_works(r, tmp_path)
    finally:
        r.close()


def test_an_empty_file_is_used_as_a_new_one(tmp_path):
    (tmp_path / "parcels.sqlite").write_bytes(b"")
    r = Records(tmp_path)
    try:
        assert not any(kept_files(tmp_path, k) for k in ("corrupt", "foreign", "newer")) and not r.alarms.active()
        assert_new_file_works(r, tmp_path)
    finally:
        r.close()


def test_version_1_records_are_migrated_with_their_rows(tmp_path):
    db = sqlite3.connect(tmp_path / "parcels.sqlite")
    db.executescript(SCHEMA_V1)
    db.executemany("INSERT INTO parcels (plc_boot, tracking, scan_seq, scanned_wall, waybills, chute, reason,"
                   " plan_version, sent, confirmed_result) VALUES (7, ?, ?, ?, '[\"SF1\"]', 3, 'PREADVICE', 'p', 1,"
                   " 'DIVERTED')", [(t, t, 1_700_000_000.0 + t) for t in range(1, 101)])
    db.execute("INSERT INTO actions (at_wall, who, action, detail) VALUES (1, 'Wang', 'disable chute', '4')")
    db.commit()
    db.close()
    r = Records(tmp_path, reuse_after_s=600)
    try:
        assert not r.alarms.active() and not any(kept_files(tmp_path, k) for k in ("corrupt", "foreign", "newer"))
        assert r.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        rows = r.db.execute("SELECT tracking, scanned_wall, sent, confirmed_result FROM parcels ORDER BY id").fetchall()
        assert rows == [(t, 1_700_000_000.0 + t, 1, "DIVERTED") for t in range(1, 101)]
        assert r.disabled_chutes() == {4}
        indexes = {name for (name,) in r.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"parcels_key", "parcels_scanned"} <= indexes
        decide(r, 5, boot=7)           # the same key long after: a row of its own, the old one stays
        assert r.flush()
        assert r.db.execute("SELECT count(*) FROM parcels WHERE plc_boot = 7 AND tracking = 5").fetchone() == (2,)
        assert r.reused(7, 5)
    finally:
        r.close()


def test_a_newer_schema_is_kept_aside_unchanged_and_a_new_file_started(tmp_path):
    """Refusing to start would stop sorting (and loop under systemd); writing into a format this
    version does not know could spoil it. Kept aside, it waits for the newer version."""
    db = sqlite3.connect(tmp_path / "parcels.sqlite")
    db.executescript(SCHEMA_V1.replace("UNIQUE (plc_boot, tracking)", "weight_g INTEGER"))
    db.execute("INSERT INTO parcels (plc_boot, tracking, scan_seq, scanned_wall, waybills, chute, reason,"
               " plan_version, weight_g) VALUES (1, 1, 1, 1.0, '[]', 3, 'PREADVICE', 'p', 1200)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    r = Records(tmp_path)
    try:
        [kept] = kept_files(tmp_path, "newer")
        other = sqlite3.connect(tmp_path / kept)
        assert other.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert other.execute("SELECT weight_g FROM parcels").fetchall() == [(1200,)]
        other.close()
        alarm = r.alarms.active()[0]
        assert alarm.key == "records_corrupt" and "newer sortline" in alarm.cause and "free disk" not in alarm.remedy
        assert_new_file_works(r, tmp_path)
    finally:
        r.close()


async def test_damage_found_mid_shift_raises_nothing_and_rows_go_to_a_new_file(tmp_path):
    r = Records(tmp_path)
    try:
        for t in range(1, 200):
            decide(r, t)
            r.sent(1, t)
        assert await asyncio.wait_for(decide(r, 200), 5)
        # Everything into the file, the log emptied: the writer reads the file itself next time.
        db = sqlite3.connect(tmp_path / "parcels.sqlite")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        with open(tmp_path / "parcels.sqlite", "r+b") as f:
            f.write(os.urandom((tmp_path / "parcels.sqlite").stat().st_size))
        futures = [decide(r, t) for t in range(201, 211)]
        for t in range(201, 211):
            r.sent(1, t)
            r.confirmed(1, t, 5, "DIVERTED")
        r.action("Wang", "disable chute", "3")
        assert all(await asyncio.wait_for(asyncio.gather(*futures), 5))
        assert r.already_sent(1, 150)      # from memory: still known after the file went away
        await asyncio.sleep(0.05)
        assert r.flush(wait_s=0) and r.error is None
        assert len(kept_files(tmp_path, "corrupt")) == 1
        assert r.alarms.is_active("records_corrupt")
        db = sqlite3.connect(tmp_path / "parcels.sqlite")
        assert db.execute("SELECT min(tracking), count(*), sum(sent) FROM parcels").fetchone() == (201, 10, 10)
        assert db.execute("SELECT count(*) FROM actions").fetchone() == (1,)
        db.close()
    finally:
        r.close()
