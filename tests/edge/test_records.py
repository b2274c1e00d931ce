"""Records survive a full disk: rows wait in memory, in order, and land when space returns.

Rows are written by the records' own thread: `flush()` outside an event loop waits for them."""
import sqlite3
from types import SimpleNamespace

from fastpath import Decision, Reason
from edge.records import Records


def decide(records, tracking):
    read = SimpleNamespace(waybills=("SF1234567890123",), routing_code="312-Q01-07", sources={"waybill": "barcode"},
                           no_read_reason=None)
    records.decided(plc_boot=1, tracking=tracking, scan_seq=tracking, read=read,
                    decision=Decision(5, Reason.ROUTING_CODE, "SF", "Dangcheng"), plan_version="v1", times={})
    records.sent(1, tracking)


def test_full_disk_keeps_rows_in_memory_and_writes_them_later(tmp_path):
    r = Records(tmp_path)
    decide(r, 1)
    assert r.flush()
    writer_db = r._wdb         # the writer's own connection: the limit below is per connection
    pages = writer_db.execute("PRAGMA page_count").fetchone()[0]
    writer_db.execute(f"PRAGMA max_page_count = {pages}")      # the database file cannot grow: a full disk
    for t in range(2, 400):
        decide(r, t)
    assert not r.flush()
    assert r.error and "full" in r.error and r.pending
    writer_db.execute("PRAGMA max_page_count = 1000000")         # space again
    assert r.flush() and r.error is None and not r.pending
    rows = sqlite3.connect(tmp_path / "parcels.sqlite").execute(
        "SELECT count(*), sum(sent) FROM parcels").fetchone()
    assert rows == (399, 399)


def test_confirmation_without_a_decision_gets_its_own_row(tmp_path):
    r = Records(tmp_path)
    r.confirmed(3, 77, 24, "NO_HEARTBEAT")
    decide(r, 78)
    r.confirmed(1, 78, 5, "DIVERTED")
    assert r.flush()
    rows = r.db.execute("SELECT tracking, reason, confirmed_result, sent FROM parcels ORDER BY tracking").fetchall()
    assert rows == [(77, "PLC_NO_HEARTBEAT", "NO_HEARTBEAT", 0), (78, "ROUTING_CODE", "DIVERTED", 1)]
    assert r.already_sent(1, 78) and not r.already_sent(3, 77)


def test_records_past_retention_are_deleted_in_small_batches(tmp_path):
    r = Records(tmp_path, retention_days=90)
    for t in range(1, 6):
        decide(r, t)
    assert r.flush()
    r.db.execute("UPDATE parcels SET scanned_wall = scanned_wall - 91 * 86400 WHERE tracking <= 3")
    # the writer thread deletes; the future says how many
    assert [r.prune(batch=2).result(5) for _ in range(3)] == [2, 1, 0]
    assert [t for (t,) in r.db.execute("SELECT tracking FROM parcels ORDER BY tracking")] == [4, 5]


def _frames_in_log(path) -> int:
    """Frames in the write-ahead log now (a passive checkpoint from another connection says so)."""
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    finally:
        db.close()


def test_the_log_is_copied_into_the_database_beside_the_writer_not_inside_its_commits(tmp_path, monkeypatch):
    import time

    from edge import records as records_module
    monkeypatch.setattr(records_module, "CHECKPOINT_EVERY_S", 0.05)
    r = Records(tmp_path)
    assert r.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0     # never inside a commit
    assert r._wdb.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    for t in range(1, 400):
        decide(r, t)
    assert r.flush()
    time.sleep(0.3)                  # the thread copies the log while the writer pauses ...
    decide(r, 400)                   # ... so the next commit starts the log again from its beginning
    assert r.flush()
    assert _frames_in_log(tmp_path / "parcels.sqlite") < 20
    r.close()
    assert not r._checkpoints.is_alive()
    assert sqlite3.connect(tmp_path / "parcels.sqlite").execute("SELECT count(*) FROM parcels").fetchone() == (400,)


def test_without_the_thread_sqlite_checkpoints_in_its_commits(tmp_path):
    r = Records(tmp_path, checkpoint_thread=False)
    assert r.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert r._wdb.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    r.close()
