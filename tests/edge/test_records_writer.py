"""The records' writer thread: the caller only queues, whatever the database does.

Another process holding the write lock, a full disk (a real 1 MB tmpfs), a bounded backlog, a
row SQLite cannot store, a kill -9: the calls return at once, rows land in order when the
database accepts them, and what was committed survives.
"""
import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge import records as records_module
from edge.records import Records
from fastpath import Decision, Reason

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[2]
READ = SimpleNamespace(waybills=("SF1234567890123",), routing_code="312-Q01-07", sources={"waybill": "barcode"},
                       no_read_reason=None)


def decide(records, tracking, boot=1):
    return records.decided(plc_boot=boot, tracking=tracking, scan_seq=tracking, read=READ,
                           decision=Decision(5, Reason.ROUTING_CODE, "SF", "Dangcheng"), plan_version="v1",
                           times={"total_ms": 12.0})


def rows(folder, sql="SELECT tracking, sent, confirmed_result FROM parcels ORDER BY id"):
    db = sqlite3.connect(folder / "parcels.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def hold_write_lock(db_path: Path, seconds: float) -> subprocess.Popen:
    """Another program (a database browser, a backup script) holding the write lock."""
    code = ("import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "db.execute('COMMIT')\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(db_path), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


async def test_calls_return_at_once_while_another_process_holds_the_write_lock(tmp_path):
    r = Records(tmp_path)
    loop_gaps = []

    async def tick():                       # the event loop keeps turning meanwhile
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            loop_gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        holder = hold_write_lock(tmp_path / "parcels.sqlite", 3.0)
        slowest = {"decided": 0.0, "sent": 0.0, "confirmed": 0.0, "action": 0.0}
        futures = []
        for t in range(1, 101):             # 100 parcels over the 3 s
            calls = {"decided": lambda: futures.append(decide(r, t)), "sent": lambda: r.sent(1, t),
                     "confirmed": lambda: r.confirmed(1, t, 5, "DIVERTED"),
                     "action": lambda: r.action("Wang", "disable chute", str(t))}
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                slowest[name] = max(slowest[name], time.perf_counter() - started)
            await asyncio.sleep(0.02)
        assert holder.poll() is None, "the lock was released before the calls ended: the test proves nothing"
        assert max(slowest.values()) < 0.010, slowest
        assert not futures[0].done() or futures[0].result() is False     # never True while locked
        assert r.pending and r.error and "another program holds a write lock" in r.error
        alarm = {a.key: a for a in r.alarms.active()}["records_write"]
        assert "close the program" in alarm.remedy and "free disk space" not in alarm.remedy
        assert await asyncio.to_thread(holder.wait, 10) == 0
        deadline = time.monotonic() + 10
        while r.pending and time.monotonic() < deadline:
            r.flush()                       # as the controller does every 100 ms: never waits on the loop
            await asyncio.sleep(0.1)
        assert not r.pending and r.error is None and not r.alarms.is_active("records_write")
        assert rows(tmp_path) == [(t, 1, "DIVERTED") for t in range(1, 101)]
        assert rows(tmp_path, "SELECT detail FROM actions ORDER BY id") == [(str(t),) for t in range(1, 101)]
        assert max(loop_gaps) < 0.2, f"the event loop stalled {max(loop_gaps) * 1000:.0f} ms"
        assert await asyncio.wait_for(decide(r, 101), 5) is True
    finally:
        ticker.cancel()
        r.close()


async def test_a_decision_is_committed_when_its_future_says_so(tmp_path):
    r = Records(tmp_path)
    try:
        future = decide(r, 7)
        assert isinstance(future, asyncio.Future)
        assert await asyncio.wait_for(future, 5) is True
        assert rows(tmp_path) == [(7, 0, None)]      # visible to another connection before "sent"
    finally:
        r.close()


def test_without_an_event_loop_decided_returns_none(tmp_path):
    r = Records(tmp_path)
    try:
        assert decide(r, 1) is None
        assert r.flush() and rows(tmp_path) == [(1, 0, None)]
    finally:
        r.close()


@pytest.fixture
def small_disk(tmp_path):
    """A real file system of 1 MB (tmpfs; needs root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk up, as camera images or logs do."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


async def test_a_full_disk_keeps_rows_in_memory_in_order_and_writes_them_when_space_returns(small_disk):
    folder = small_disk / "records"
    r = Records(folder)
    try:
        assert await asyncio.wait_for(decide(r, 1), 5)
        filler = fill(small_disk)
        for t in range(2, 1500):
            decide(r, t)
            r.sent(1, t)
        deadline = time.monotonic() + 10
        while not r.error and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert r.error and "full" in r.error and r.pending
        alarms = {a.key: a for a in r.alarms.active()}
        assert "free disk space" in alarms["records_write"].remedy
        assert "parcel records wait in memory" in alarms["records_backlog"].cause
        parked = decide(r, 1500)            # the database refuses: the controller need not wait
        assert parked.done() and parked.result() is False
        filler.unlink()                     # space again
        deadline = time.monotonic() + 20
        while r.pending and time.monotonic() < deadline:
            r.flush()
            await asyncio.sleep(0.1)
        assert not r.pending and r.error is None
        assert not r.alarms.is_active("records_write") and not r.alarms.is_active("records_backlog")
        assert rows(folder, "SELECT tracking FROM parcels ORDER BY id") == [(t,) for t in range(1, 1501)]
        assert rows(folder, "SELECT count(*) FROM parcels WHERE sent = 1") == [(1498,)]
    finally:
        r.close()


def test_past_max_pending_the_oldest_rows_are_dropped_counted_and_alarmed(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(records_module, "MAX_PENDING", 50)
    r = Records(tmp_path)
    try:
        decide(r, 1)
        assert r.flush()
        writer_db = r._wdb
        writer_db.execute(f"PRAGMA max_page_count = {writer_db.execute('PRAGMA page_count').fetchone()[0]}")
        for t in range(2, 200):
            decide(r, t)
        assert not r.flush()
        assert r.pending == 50 and r._backlog.dropped == 148
        assert "over 100 were dropped" in {a.key: a for a in r.alarms.active()}["records_backlog"].cause
        assert "unwritten parcel records dropped" in caplog.text
        writer_db.execute("PRAGMA max_page_count = 1000000")
        assert r.flush()
        assert rows(tmp_path, "SELECT tracking FROM parcels ORDER BY id") == [(1,)] + [(t,) for t in range(150, 200)]
        lost = {a.key: a for a in r.alarms.active()}["records_backlog"]        # stays a while: records were lost
        assert "148 parcel records were lost" in lost.cause
    finally:
        r.close()


def test_a_row_sqlite_cannot_store_is_dropped_and_the_others_written(tmp_path, caplog):
    r = Records(tmp_path)
    try:
        with caplog.at_level(logging.ERROR, logger="sortline.records"):
            r.action("Wang", "disable chute", "3")
            r.action({"not": "a name"}, "disable chute", "4")
            r.action("Li", "enable chute", "3")
            assert r.flush()
        assert rows(tmp_path, "SELECT who, detail FROM actions ORDER BY id") == [("Wang", "3"), ("Li", "3")]
        assert "cannot be stored was dropped" in caplog.text
    finally:
        r.close()


def test_close_writes_what_waits(tmp_path):
    r = Records(tmp_path)
    for t in range(1, 3001):
        decide(r, t)
    r.close()
    assert rows(tmp_path, "SELECT count(*) FROM parcels") == [(3000,)]


def test_close_gives_up_after_its_time_when_the_database_refuses(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(records_module, "CLOSE_WAIT_S", 0.5)
    r = Records(tmp_path)
    holder = hold_write_lock(tmp_path / "parcels.sqlite", 4.0)
    try:
        decide(r, 1)
        started = time.monotonic()
        r.close()
        assert time.monotonic() - started < 1.5
        assert "1 parcel records were not written" in caplog.text
    finally:
        holder.kill()
        holder.wait()


KILLED_WRITER = """
import asyncio, os, sys
sys.path.insert(0, {repo!r})
from tests.edge.test_records_writer import decide
from edge.records import Records

async def main():
    r = Records(sys.argv[1])
    for t in range(1, 501):
        assert await decide(r, t)
        r.sent(1, t)
    print("committed", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_what_was_committed_survives_kill_minus_9(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER.format(repo=str(REPO)), str(tmp_path)],
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert child.stdout.readline().strip() == "committed"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    r = Records(tmp_path)             # the log left behind is no damage: read as it is
    try:
        assert not r.alarms.active()
        assert rows(tmp_path, "SELECT count(*), min(tracking), max(tracking) FROM parcels") == [(500, 1, 500)]
        assert r.already_sent(1, 499)     # the "sent" after the last commit may or may not be there
    finally:
        r.close()


SCHEMA_V1_PARCELS = """CREATE TABLE parcels (id INTEGER PRIMARY KEY, plc_boot INTEGER NOT NULL,
    tracking INTEGER NOT NULL, scan_seq INTEGER NOT NULL, scanned_wall REAL NOT NULL, waybills TEXT NOT NULL,
    routing_code TEXT, courier TEXT, destination TEXT, read_sources TEXT, no_read_reason TEXT,
    chute INTEGER NOT NULL, reason TEXT NOT NULL, plan_version TEXT NOT NULL, image_ms REAL, read_ms REAL,
    decide_ms REAL, total_ms REAL, sent INTEGER NOT NULL DEFAULT 0, confirmed_chute INTEGER,
    confirmed_result TEXT, UNIQUE (plc_boot, tracking))"""


def test_a_migration_the_disk_has_no_room_for_changes_nothing_and_runs_when_it_has(small_disk):
    folder = small_disk / "records"
    folder.mkdir()
    db = sqlite3.connect(folder / "parcels.sqlite")
    db.execute(SCHEMA_V1_PARCELS)
    db.execute("CREATE TABLE actions (id INTEGER PRIMARY KEY, at_wall REAL NOT NULL, who TEXT NOT NULL,"
               " action TEXT NOT NULL, detail TEXT)")
    db.executemany("INSERT INTO parcels (plc_boot, tracking, scan_seq, scanned_wall, waybills, chute, reason,"
                   " plan_version, sent) VALUES (1, ?, ?, ?, ?, 3, 'PREADVICE', 'p', 1)",
                   [(t, t, time.time(), "x" * 200) for t in range(1, 601)])
    db.execute("INSERT INTO actions (at_wall, who, action, detail) VALUES (1, 'Wang', 'disable chute', '4')")
    db.commit()
    db.close()
    before = (folder / "parcels.sqlite").read_bytes()
    filler = fill(small_disk)
    r = Records(folder, reuse_after_s=600)
    try:
        assert r.error and "full" in r.error and r.alarms.is_active("records_write")
        assert (folder / "parcels.sqlite").read_bytes() == before         # all or nothing
        assert r.disabled_chutes() == {4}          # still read, from the old file
        assert r.already_sent(1, 600)
        decide(r, 601)
        assert not r.flush()
        filler.unlink()
        assert r.flush(wait_s=10) and r.error is None
        check = sqlite3.connect(folder / "parcels.sqlite")
        assert check.execute("PRAGMA user_version").fetchone() == (3,)
        assert check.execute("SELECT count(*), max(tracking) FROM parcels").fetchone() == (601, 601)
        check.close()
    finally:
        r.close()
