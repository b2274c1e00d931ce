"""Which row a (plc_boot, tracking) means: within reuse_after_s the same parcel (a controller
restart decides it again), later or after the PLC's renumbering a new one with a row of its own.
And one controller per records folder, checked with a real second process."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from edge.records import Records, RecordsLocked
from fastpath import Decision, Reason

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]
READ = SimpleNamespace(waybills=("SF1234567890123",), routing_code="312-Q01-07", sources={"waybill": "barcode"},
                       no_read_reason=None)
WINDOW_S = 0.3


def decide(records, tracking, chute=5, boot=1, seq=None, **kwargs):
    return records.decided(plc_boot=boot, tracking=tracking, scan_seq=tracking if seq is None else seq, read=READ,
                           decision=Decision(chute, Reason.ROUTING_CODE, "SF", "Dangcheng"), plan_version="v1",
                           times={}, **kwargs)


def rows(records):
    assert records.flush()
    return records.db.execute("SELECT tracking, chute, sent, confirmed_result FROM parcels ORDER BY id").fetchall()


def test_the_same_key_within_the_window_is_one_parcel_and_after_it_a_new_one(tmp_path):
    r = Records(tmp_path, reuse_after_s=WINDOW_S)
    try:
        decide(r, 9, chute=5)
        decide(r, 9, chute=6)               # decided again at once: a restart, the same parcel
        r.sent(1, 9)
        assert r.already_sent(1, 9) and not r.reused(1, 9)
        assert rows(r) == [(9, 6, 1, None)]
        time.sleep(WINDOW_S + 0.1)
        assert not r.already_sent(1, 9)     # forgotten: long gone from the belt
        decide(r, 9, chute=7)               # the PLC counts again from numbers it used
        assert not r.already_sent(1, 9)
        r.confirmed(1, 9, 7, "DIVERTED")    # the newest row, not the old parcel's
        assert rows(r) == [(9, 6, 1, None), (9, 7, 0, "DIVERTED")]
        assert r.reused(1, 9) and not r.reused(1, 10)
    finally:
        r.close()


def test_a_confirmation_long_after_the_old_row_gets_a_row_of_its_own(tmp_path):
    r = Records(tmp_path, reuse_after_s=WINDOW_S)
    try:
        decide(r, 4)
        r.sent(1, 4)
        r.confirmed(1, 4, 5, "DIVERTED")
        time.sleep(WINDOW_S + 0.1)
        r.confirmed(1, 4, 24, "NO_HEARTBEAT")      # a new parcel with that number, rejected by the PLC
        assert rows(r) == [(4, 5, 1, "DIVERTED"), (4, 24, 0, "NO_HEARTBEAT")]
    finally:
        r.close()


def test_a_new_parcel_the_link_knows_of_gets_its_own_row_within_the_window(tmp_path):
    r = Records(tmp_path)
    try:
        decide(r, 3, chute=5)
        r.sent(1, 3)
        decide(r, 3, chute=8, new_parcel=True)
        assert not r.already_sent(1, 3)
        r.sent(1, 3)
        assert rows(r) == [(3, 5, 1, None), (3, 8, 1, None)]
        assert r.reused(1, 3)
    finally:
        r.close()


def test_after_a_renumbering_the_old_rows_of_that_boot_are_left_alone(tmp_path):
    r = Records(tmp_path)
    try:
        for t in (1, 2, 3):
            decide(r, t, chute=5)
            r.sent(1, t)
        decide(r, 1, boot=2, chute=9)       # another boot id: not touched
        r.sent(2, 1)
        assert r.highest_scan_seq(1) == 3 and r.highest_scan_seq(7) is None
        r.renumbered(1)
        assert r.highest_scan_seq(1) is None and not r.already_sent(1, 2) and r.already_sent(2, 1)
        r.confirmed(1, 1, 24, "NO_HEARTBEAT")   # the new parcel 1, rejected while the controller waited
        decide(r, 2, chute=6, seq=1)
        assert r.highest_scan_seq(1) == 1
        assert rows(r) == [(1, 5, 1, None), (2, 5, 1, None), (3, 5, 1, None), (1, 9, 1, None),
                           (1, 24, 0, "NO_HEARTBEAT"), (2, 6, 0, None)]
    finally:
        r.close()


def test_a_restarted_controller_knows_what_was_sent_without_reading_on_its_thread(tmp_path):
    first = Records(tmp_path, reuse_after_s=60)
    for t in (1, 2):
        decide(first, t)
    first.sent(1, 1)
    first.close()
    again = Records(tmp_path, reuse_after_s=60)
    try:
        assert again.already_sent(1, 1) and not again.already_sent(1, 2)
        assert again.highest_scan_seq(1) == 2
        again.db.close()                     # answered from memory: no database behind it any more
        again.db = None
        assert again.already_sent(1, 1) and not again.already_sent(1, 2)
        decide(again, 2, chute=11)           # decided again after the restart: the same row
        again.sent(1, 2)
        assert again.flush()
    finally:
        again.close()
    db = sqlite3.connect(tmp_path / "parcels.sqlite")
    assert db.execute("SELECT tracking, chute, sent FROM parcels ORDER BY id").fetchall() == [(1, 5, 1), (2, 11, 1)]
    db.close()


def test_the_window_is_counted_from_the_records_after_a_restart(tmp_path):
    first = Records(tmp_path, reuse_after_s=WINDOW_S)
    decide(first, 1)
    first.sent(1, 1)
    first.close()
    time.sleep(WINDOW_S + 0.1)
    again = Records(tmp_path, reuse_after_s=WINDOW_S)
    try:
        assert not again.already_sent(1, 1) and again.highest_scan_seq(1) is None
        decide(again, 1, chute=12)
        assert rows(again) == [(1, 5, 1, None), (1, 12, 0, None)]
    finally:
        again.close()


HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from edge.records import Records
r = Records(sys.argv[1])
print("open", flush=True)
time.sleep(60)
"""


def test_a_second_controller_on_the_same_folder_is_refused_with_the_first_ones_pid(tmp_path):
    first = subprocess.Popen([sys.executable, "-c", HOLDER.format(repo=str(REPO)), str(tmp_path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "open"
        with pytest.raises(RecordsLocked) as refused:
            Records(tmp_path)
        message = str(refused.value)
        assert f"another controller (PID {first.pid}) uses the records in {tmp_path}" in message
        assert "systemctl stop sortline" in message and "[records] folder" in message
        assert isinstance(refused.value, RuntimeError)
    finally:
        os.kill(first.pid, signal.SIGKILL)   # a controller killed outright frees the folder too
        first.wait()
    r = Records(tmp_path)
    try:
        assert (tmp_path / "parcels.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(RecordsLocked):
            Records(tmp_path)                # a second one in the same process as well
    finally:
        r.close()
    Records(tmp_path).close()                # close() frees the folder
