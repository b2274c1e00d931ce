"""Per-parcel records in SQLite (WAL): one row per parcel, committed as soon as it is decided.

WAL with synchronous=NORMAL survives a killed process without an fsync per parcel; the row is
committed before the assignment is sent, so a decision the PLC has is never missing here.
"""
import json
import sqlite3
import time
from pathlib import Path

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY, at_wall REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, detail TEXT
);
CREATE TABLE IF NOT EXISTS confirmations_unmatched (
    id INTEGER PRIMARY KEY, tracking INTEGER, chute INTEGER, result TEXT, received_wall REAL
);
"""


class Records:
    def __init__(self, folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.path = Path(folder) / "parcels.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def decided(self, *, plc_boot, tracking, scan_seq, read, decision, plan_version, times) -> int:
        cur = self.db.execute(
            "INSERT OR REPLACE INTO parcels (plc_boot, tracking, scan_seq, scanned_wall, waybills, routing_code,"
            " courier, destination, read_sources, no_read_reason, chute, reason, plan_version,"
            " image_ms, read_ms, decide_ms, total_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (plc_boot, tracking, scan_seq, time.time(), json.dumps(list(read.waybills)), read.routing_code,
             decision.courier, decision.destination, json.dumps(read.sources), read.no_read_reason,
             decision.chute, decision.reason.name, plan_version,
             times.get("image_ms"), times.get("read_ms"), times.get("decide_ms"), times.get("total_ms")))
        return cur.lastrowid

    def sent(self, row_id: int) -> None:
        self.db.execute("UPDATE parcels SET sent = 1 WHERE id = ?", (row_id,))

    def confirmed(self, plc_boot: int, tracking: int, chute: int, result: str) -> None:
        cur = self.db.execute("UPDATE parcels SET confirmed_chute = ?, confirmed_result = ? "
                              "WHERE plc_boot = ? AND tracking = ?", (chute, result, plc_boot, tracking))
        if cur.rowcount == 0:
            self.db.execute("INSERT INTO confirmations_unmatched (tracking, chute, result, received_wall) "
                            "VALUES (?,?,?,?)", (tracking, chute, result, time.time()))

    def action(self, who: str, action: str, detail: str = "") -> None:
        """Technician actions, with who and when: the line's logbook."""
        self.db.execute("INSERT INTO actions (at_wall, who, action, detail) VALUES (?,?,?,?)",
                        (time.time(), who, action, detail))

    def close(self) -> None:
        self.db.close()
