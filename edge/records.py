"""Per-parcel records in SQLite (WAL): one row per parcel, committed as soon as it is decided.

WAL with synchronous=NORMAL survives a killed process without an fsync per parcel; the row is
committed before the assignment is sent, so a decision the PLC has is never missing here. The
log is copied into the database file (a checkpoint, with its fsyncs) by a thread of its own,
never inside a parcel's commit: on a disk, SQLite's automatic checkpoints held one commit in 250
for 5-45 ms (`python -m edge.records_bench`). When
the disk refuses a write (full, read-only), rows wait in memory, in order, and are written as
soon as it accepts them again: sorting never stops for the records.
"""
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger("sortline.records")

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
CREATE INDEX IF NOT EXISTS parcels_scanned ON parcels (scanned_wall);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY, at_wall REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, detail TEXT
);
"""

MAX_PENDING = 1_000_000      # about an hour at a cross-belt rate; beyond that the oldest is logged and dropped
CHECKPOINT_EVERY_S = 1.0     # keeps the log short: a few hundred parcels at a cross-belt rate
# A writer that never pauses (far above any line's rate) keeps a passive checkpoint from ever
# finishing, and the log would grow without end: past this size it is emptied while writes wait.
WAL_LIMIT_BYTES = 64 * 1024 * 1024
WRITE_WAIT_MS = 2000


class _Checkpoints(threading.Thread):
    """Copies the write-ahead log into the database file beside the writer, without blocking it
    (PASSIVE: frames a reader still uses wait for the next round). SQLite runs the copy and its
    fsyncs with the interpreter lock released."""

    def __init__(self, path: Path, every_s: float):
        super().__init__(name="records-checkpoint", daemon=True)
        self.path, self.every_s = path, every_s
        self.done = threading.Event()

    def run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        wal = Path(f"{self.path}-wal")
        try:
            while not self.done.wait(self.every_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    if wal.exists() and wal.stat().st_size > WAL_LIMIT_BYTES:
                        log.info("parcel records' log passed %d MB: emptied, writes wait meanwhile",
                                 WAL_LIMIT_BYTES >> 20)
                        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except (sqlite3.OperationalError, OSError) as exc:
                    log.warning("parcel records not copied from their log into %s yet: %s", self.path, exc)
        finally:
            db.close()


class Records:
    def __init__(self, folder, retention_days: float | None = None, checkpoint_thread: bool = True):
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.path = Path(folder) / "parcels.sqlite"
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(f"PRAGMA busy_timeout={WRITE_WAIT_MS}")  # a write waits while the log is emptied
        self.db.executescript(SCHEMA)
        # Without the thread (for comparison: python -m edge.records_bench), SQLite checkpoints
        # inside a commit every 1,000 pages of log.
        self._checkpoints = _Checkpoints(self.path, CHECKPOINT_EVERY_S) if checkpoint_thread else None
        if self._checkpoints:
            self.db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpoints.start()
        self.retention_s = retention_days * 86400 if retention_days else None
        self.pending: list[tuple[str, tuple]] = []
        self.error: str | None = None
        self.write_errors = 0

    def _write(self, sql: str, params: tuple) -> None:
        self.pending.append((sql, params))
        self.flush()

    def flush(self) -> bool:
        """Write what waits, oldest first; False while the database refuses."""
        while self.pending:
            sql, params = self.pending[0]
            try:
                self.db.execute(sql, params)
            except sqlite3.OperationalError as exc:
                self.write_errors += 1
                if self.error is None:
                    log.error("parcel records cannot be written to %s: %s; keeping them in memory", self.path, exc)
                self.error = str(exc)
                if len(self.pending) > MAX_PENDING:
                    log.error("dropping the oldest unwritten record: %s %s", sql.split()[0], params[:3])
                    self.pending.pop(0)
                return False
            self.pending.pop(0)
        if self.error is not None:
            log.info("parcel records are written again to %s", self.path)
            self.error = None
        return True

    def already_sent(self, plc_boot: int, tracking: int) -> bool:
        """A decision the PLC already has (the controller restarted after sending it)."""
        row = self.db.execute("SELECT sent FROM parcels WHERE plc_boot = ? AND tracking = ?",
                              (plc_boot, tracking)).fetchone()
        return bool(row and row[0])

    def decided(self, *, plc_boot, tracking, scan_seq, read, decision, plan_version, times) -> None:
        self._write(
            "INSERT INTO parcels (plc_boot, tracking, scan_seq, scanned_wall, waybills, routing_code,"
            " courier, destination, read_sources, no_read_reason, chute, reason, plan_version,"
            " image_ms, read_ms, decide_ms, total_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (plc_boot, tracking) DO UPDATE SET scan_seq = excluded.scan_seq,"
            " waybills = excluded.waybills, routing_code = excluded.routing_code, courier = excluded.courier,"
            " destination = excluded.destination, read_sources = excluded.read_sources,"
            " no_read_reason = excluded.no_read_reason, chute = excluded.chute, reason = excluded.reason,"
            " plan_version = excluded.plan_version, image_ms = excluded.image_ms, read_ms = excluded.read_ms,"
            " decide_ms = excluded.decide_ms, total_ms = excluded.total_ms",
            (plc_boot, tracking, scan_seq, time.time(), json.dumps(list(read.waybills)), read.routing_code,
             decision.courier, decision.destination, json.dumps(read.sources), read.no_read_reason,
             decision.chute, decision.reason.name, plan_version,
             times.get("image_ms"), times.get("read_ms"), times.get("decide_ms"), times.get("total_ms")))

    def sent(self, plc_boot: int, tracking: int) -> None:
        self._write("UPDATE parcels SET sent = 1 WHERE plc_boot = ? AND tracking = ?", (plc_boot, tracking))

    def confirmed(self, plc_boot: int, tracking: int, chute: int, result: str) -> None:
        """Where the PLC says the parcel went; a parcel the controller never decided gets its row here."""
        self._write(
            "INSERT INTO parcels (plc_boot, tracking, scan_seq, scanned_wall, waybills, chute, reason, plan_version,"
            " confirmed_chute, confirmed_result) VALUES (?, ?, 0, ?, '[]', ?, ?, '', ?, ?)"
            " ON CONFLICT (plc_boot, tracking) DO UPDATE SET confirmed_chute = excluded.confirmed_chute,"
            " confirmed_result = excluded.confirmed_result",
            (plc_boot, tracking, time.time(), chute, "PLC_" + result, chute, result))

    def action(self, who: str, action: str, detail: str = "") -> None:
        """Technician actions, with who and when: the line's logbook."""
        self._write("INSERT INTO actions (at_wall, who, action, detail) VALUES (?,?,?,?)",
                    (time.time(), who, action, detail))

    def disabled_chutes(self) -> set[int]:
        """Chutes a technician left disabled, from the logbook: the last word on each chute counts."""
        disabled: set[int] = set()
        rows = self.db.execute("SELECT action, detail FROM actions WHERE action IN ('disable chute', 'enable chute')"
                               " ORDER BY id")
        for action, detail in rows:
            try:
                chute = int(detail)
            except (TypeError, ValueError):
                continue                  # a row written by hand: not a chute number
            (disabled.add if action == "disable chute" else disabled.discard)(chute)
        return disabled

    def prune(self, batch: int = 2000) -> int:
        """Delete up to `batch` parcel rows past the retention time; small batches keep each call short."""
        if self.retention_s is None or self.pending:
            return 0
        try:
            cur = self.db.execute("DELETE FROM parcels WHERE id IN (SELECT id FROM parcels WHERE scanned_wall < ?"
                                  " ORDER BY scanned_wall LIMIT ?)", (time.time() - self.retention_s, batch))
        except sqlite3.OperationalError as exc:
            log.warning("old records not deleted: %s", exc)
            return 0
        return cur.rowcount

    def close(self) -> None:
        if self._checkpoints:
            self._checkpoints.done.set()
            self._checkpoints.join(5.0)
        self.flush()
        self.db.close()
