"""Per-parcel records in SQLite (WAL), written by a thread of their own: sorting never waits on the disk.

The controller's calls (decided, sent, confirmed, action) only queue a row and return. A writer
thread owns the write connection and commits what is queued, oldest first, a small group at a
time. `decided()` hands back a future that the writer resolves with True once the row is
committed, or False when the database refuses it and the row waits in memory: the controller
awaits it until the parcel's deadline, so a decision the PLC has is committed whenever the disk
allows, and a disk that does not never makes a parcel late.

WAL with synchronous=NORMAL survives a killed process without an fsync per parcel. The log is
copied into the database file (a checkpoint, with its fsyncs) by another thread, never inside a
commit: on a disk, SQLite's automatic checkpoints held one commit in 250 for 5-45 ms
(`python -m edge.bench.records`).

No fault of the records stops sorting. A database that refuses writes (disk full, read-only,
locked by another program) keeps rows in memory, in order, until it accepts them again. A
damaged, foreign or newer database is moved aside under a name that says when and why, and a new
one is started. Each is an alarm with its remedy. One controller per records folder: a second
one is refused (RecordsLocked).
"""
import asyncio
import collections
import concurrent.futures
import errno
import fcntl
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from drivers.recent_table import RecentTable

from .alarms import Alarms

log = logging.getLogger("sortline.records")

DB_NAME = "parcels.sqlite"
LOCK_NAME = "parcels.lock"
# Page cache per connection. New rows go to the right-hand end of the table and its indexes, and
# the screen reads the newest: a small cache holds all of that, and fills in the first minutes
# instead of growing for the first hours of a shift (SQLite's default: 2 MB).
CACHE_KIB = 512
SCHEMA_VERSION = 3             # PRAGMA user_version; the first shipped schema (user_version 0) is version 1

# Parcels remembered in memory (allocated at start, drivers/recent_table.py): 10 minutes at 390,000
# parcels/h, ten times what a line carries. Past it the oldest are looked up in the database.
RECENT_PARCELS = 65_536
MAX_PENDING = 1_000_000      # about an hour at a cross-belt rate; beyond that the oldest is logged and dropped
BATCH_ROWS = 500             # most rows per commit: a backlog is written in steps, never in one long transaction
RETRY_S = 1.0                # a database that refused is tried again this often (and at each flush())
FLUSH_WAIT_S = 5.0           # flush() outside an event loop (scripts, tools) waits this long at most
CLOSE_WAIT_S = 5.0
CHECK_LIMIT_S = 3.0          # start-up check of a big file stops here: damage further in is found when used
BACKLOG_ALARM_ROWS = 1000    # rows waiting though the database accepts them: the disk is too slow
MOVED_ALARM_HOLD_S = 24 * 3600.0    # a file moved aside stays on the screen for a day of shifts
LOST_ALARM_HOLD_S = 3600.0
CHECKPOINT_EVERY_S = 1.0     # keeps the log short: a few hundred parcels at a cross-belt rate
# A writer that never pauses (far above any line's rate) keeps a passive checkpoint from ever
# finishing, and the log would grow without end: past this size it is emptied while writes wait.
WAL_LIMIT_BYTES = 64 * 1024 * 1024
WRITE_WAIT_MS = 2000

PARCELS_COLUMNS = """
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
    weight_kg REAL, length_mm REAL, width_mm REAL, height_mm REAL, volume_l REAL
"""
# Version 3: the scale's weighing (edge/scale.py), NULL when none came before the decision.
WEIGHT_COLUMNS = ("weight_kg", "length_mm", "width_mm", "height_mm", "volume_l")
# Version 2: no UNIQUE (plc_boot, tracking). A PLC whose memory was reset comes back with the
# same boot id and numbers; those are new parcels and get rows of their own.
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS parcels ({PARCELS_COLUMNS})",
    "CREATE INDEX IF NOT EXISTS parcels_key ON parcels (plc_boot, tracking)",
    "CREATE INDEX IF NOT EXISTS parcels_scanned ON parcels (scanned_wall)",
    "CREATE TABLE IF NOT EXISTS actions ("
    " id INTEGER PRIMARY KEY, at_wall REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, detail TEXT)",
)
# Every version's parcels table has these: a table without them is not parcel records.
PARCELS_COLUMN_NAMES = ("id", "plc_boot", "tracking", "scan_seq", "scanned_wall", "waybills", "routing_code",
                        "courier", "destination", "read_sources", "no_read_reason", "chute", "reason",
                        "plan_version", "image_ms", "read_ms", "decide_ms", "total_ms", "sent",
                        "confirmed_chute", "confirmed_result")

NEWEST_ROW = "SELECT max(id) FROM parcels WHERE plc_boot = ? AND tracking = ? AND scanned_wall >= ? AND id > ?"
ANY_ROW = "SELECT 1 FROM parcels WHERE plc_boot = ? AND tracking = ? LIMIT 1"
INSERT_DECIDED = (
    "INSERT INTO parcels (plc_boot, tracking, scanned_wall, scan_seq, waybills, routing_code, courier, destination,"
    " read_sources, no_read_reason, chute, reason, plan_version, image_ms, read_ms, decide_ms, total_ms,"
    " weight_kg, length_mm, width_mm, height_mm, volume_l)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
UPDATE_DECIDED = (
    "UPDATE parcels SET scan_seq = ?, waybills = ?, routing_code = ?, courier = ?, destination = ?,"
    " read_sources = ?, no_read_reason = ?, chute = ?, reason = ?, plan_version = ?, image_ms = ?, read_ms = ?,"
    " decide_ms = ?, total_ms = ?, weight_kg = ?, length_mm = ?, width_mm = ?, height_mm = ?, volume_l = ?"
    " WHERE id = ?")
INSERT_CONFIRMED = (
    "INSERT INTO parcels (plc_boot, tracking, scanned_wall, scan_seq, waybills, chute, reason, plan_version,"
    " confirmed_chute, confirmed_result) VALUES (?, ?, ?, 0, '[]', ?, ?, '', ?, ?)")
INSERT_ACTION = "INSERT INTO actions (at_wall, who, action, detail) VALUES (?,?,?,?)"

# Errors that belong to one row (a value SQLite cannot store): retrying cannot help, the row is dropped.
ROW_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.DataError,
              OverflowError, ValueError, TypeError)


class RecordsLocked(RuntimeError):
    """Another process writes the records in this folder."""


class _Unusable(Exception):
    """The file is not records this version can write to: `kind` is corrupt, foreign or newer."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind, self.detail = kind, detail


class _Refused(Exception):
    """The database cannot be written now, with the cause and what to do."""

    def __init__(self, cause: str, remedy: str):
        super().__init__(cause)
        self.cause, self.remedy = cause, remedy


# -- one controller per folder -----------------------------------------------------------------------
def _take_lock(folder: Path) -> int:
    """An exclusive lock on the folder's lock file, held for the life of the Records; the file holds our PID."""
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RecordsLocked(
            f"another controller (PID {holder}) uses the records in {folder}; stop it first "
            f"(systemctl stop sortline) or give this line its own [records] folder") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:          # a full disk: the lock holds all the same, only the PID is missing
        log.warning("records folder %s locked, but this controller's PID not written into %s: %s",
                    folder, LOCK_NAME, exc)
    return fd


# -- opening: check, move aside, migrate -----------------------------------------------------------
def _is_damage(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", None) or ""
    return name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB" or (
        type(exc) is sqlite3.DatabaseError and not name)


def _quick_check(db: sqlite3.Connection) -> None:
    """SQLite's own check of the pages, stopped after CHECK_LIMIT_S on a big file."""
    until_mono = time.monotonic() + CHECK_LIMIT_S
    db.set_progress_handler(lambda: time.monotonic() > until_mono, 100_000)
    try:
        found = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") != "SQLITE_INTERRUPT":
            raise
        log.warning("records check stopped after %.0f s (a big file); damage further in is found when used",
                    CHECK_LIMIT_S)
        return
    finally:
        db.set_progress_handler(None, 0)
    if found != ["ok"]:
        raise _Unusable("corrupt", "; ".join(found))


def _schema_version(db: sqlite3.Connection) -> int:
    """The version of the records in `db` (0: an empty file); _Unusable when they are not ours or newer."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = sorted(name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    if version > SCHEMA_VERSION:
        raise _Unusable("newer", f"records format {version}, this version reads up to {SCHEMA_VERSION}")
    if not tables:
        return 0
    if "parcels" not in tables:
        raise _Unusable("foreign", f"no parcels table (tables: {', '.join(tables[:5])})")
    columns = {row[1] for row in db.execute("PRAGMA table_info(parcels)")}
    missing = [c for c in PARCELS_COLUMN_NAMES if c not in columns]
    if missing:
        raise _Unusable("foreign", f"its parcels table lacks {', '.join(missing[:5])}")
    return max(version, 1)


def _v1_to_v2(db: sqlite3.Connection) -> None:
    """Version 1 had UNIQUE (plc_boot, tracking). SQLite cannot drop a constraint: the table is
    copied into one without it (the way sqlite.org/lang_altertable.html describes)."""
    columns = ", ".join(PARCELS_COLUMN_NAMES)
    db.execute(f"CREATE TABLE parcels_v2 ({PARCELS_COLUMNS})")
    db.execute(f"INSERT INTO parcels_v2 ({columns}) SELECT {columns} FROM parcels ORDER BY id")
    db.execute("DROP TABLE parcels")
    db.execute("ALTER TABLE parcels_v2 RENAME TO parcels")


def _v2_to_v3(db: sqlite3.Connection) -> None:
    """The weighing's columns, NULL in the rows before (_v1_to_v2 already makes them in its new table)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(parcels)")}
    for column in WEIGHT_COLUMNS:
        if column not in columns:
            db.execute(f"ALTER TABLE parcels ADD COLUMN {column} REAL")


MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3}        # version n -> n + 1


def _bring_up_to_date(db: sqlite3.Connection, version: int) -> None:
    """Create the schema in a new file, or migrate an older one forward; all or nothing."""
    if version == SCHEMA_VERSION:
        return
    started_mono = time.monotonic()
    db.execute("BEGIN IMMEDIATE")
    try:
        for step in range(max(version, 1), SCHEMA_VERSION) if version else ():
            MIGRATIONS[step](db)
        for statement in SCHEMA:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    if version:
        log.info("parcel records brought from format %d to %d in %.1f s", version, SCHEMA_VERSION,
                 time.monotonic() - started_mono)


def _weighed(weighing) -> tuple:
    """weight_kg, length_mm, width_mm, height_mm, volume_l; None where not weighed or not measured."""
    if weighing is None:
        return (None,) * len(WEIGHT_COLUMNS)
    dims = weighing.dims_mm or (None, None, None)
    return (weighing.weight_kg, *dims, weighing.volume_l)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=WRITE_WAIT_MS / 1000)
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return db


def _set_pragmas(db: sqlite3.Connection, own_checkpoints: bool) -> None:
    if db.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
        log.warning("parcel records are not in WAL mode: a killed controller may lose its last commits")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA busy_timeout={WRITE_WAIT_MS}")
    if own_checkpoints:
        # Without the thread (for comparison: python -m edge.bench.records), SQLite checkpoints
        # inside a commit every 1,000 pages of log.
        db.execute("PRAGMA wal_autocheckpoint=0")


def _inspect(path: Path) -> int:
    """The schema version of an existing file; _Unusable when it is damaged, not ours or newer.
    Read-only: closing it neither copies a log into a damaged file nor deletes the log."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=WRITE_WAIT_MS / 1000)
    try:
        _quick_check(db)
        return _schema_version(db)
    except sqlite3.DatabaseError as exc:
        if _is_damage(exc):
            raise _Unusable("corrupt", str(exc)) from None
        raise
    finally:
        db.close()


def _open_once(path: Path, own_checkpoints: bool) -> sqlite3.Connection:
    if os.path.lexists(path) and not path.is_file():
        raise _Unusable("foreign", "a folder or special file, not a database file")
    version = _inspect(path) if path.exists() else 0
    db = _connect(path)
    try:
        _set_pragmas(db, own_checkpoints)
        _bring_up_to_date(db, version)
    except sqlite3.DatabaseError as exc:
        db.close()
        if _is_damage(exc):
            raise _Unusable("corrupt", str(exc)) from None
        raise
    except BaseException:
        db.close()
        raise
    return db


def _move_aside(path: Path, kind: str) -> Path:
    """Rename the database and its -wal and -shm to `parcels.<kind>-<when>.sqlite...`; return the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in itertools.count(1):
        kept = path.with_name(f"{path.stem}.{kind}-{stamp}{'' if n == 1 else f'-{n}'}{path.suffix}")
        if not any(os.path.lexists(f"{kept}{s}") for s in ("", "-wal", "-shm")):
            break
    for suffix in ("", "-wal", "-shm"):
        if os.path.lexists(f"{path}{suffix}"):
            os.rename(f"{path}{suffix}", f"{kept}{suffix}")
    return kept


def open_checked(path: Path, own_checkpoints: bool = True) -> tuple[sqlite3.Connection, list]:
    """The write connection to `path`, after moving aside a file that is damaged, foreign or newer.

    Returns (connection, [(kept path, _Unusable)]). Raises sqlite3.Error or _Refused when the
    database cannot be written now (full, read-only, locked): try again later.
    """
    moved: list = []
    while True:
        try:
            return _open_once(path, own_checkpoints), moved
        except _Unusable as why:
            if moved:          # the file just started is unusable too: nothing to move aside helps
                raise _Refused(f"a new records file {path} cannot be started ({why.detail})",
                               f"check the disk and the folder {path.parent}") from None
            try:
                moved.append((_move_aside(path, why.kind), why))
            except OSError as exc:
                raise _Refused(f"{path} is unusable ({why.detail}) and cannot be moved aside ({exc})",
                               f"move {path} out of {path.parent} by hand, or free that folder for writing"
                               ) from None


# -- what to do when the database refuses ---------------------------------------------------------
def refusal(exc: BaseException, path: Path) -> tuple[str, str]:
    """(cause, remedy) for an error that keeps rows from being written to `path`."""
    if isinstance(exc, _Refused):
        return exc.cause, exc.remedy
    if isinstance(exc, RecordsLocked):
        return str(exc), "records wait in memory meanwhile"
    name = getattr(exc, "sqlite_errorname", None) or ""
    code = getattr(exc, "errno", None)
    waiting = "sorting continues and records wait in memory until then"
    if name == "SQLITE_FULL" or code == errno.ENOSPC:
        return (f"the disk of {path.parent} is full ({exc})",
                f"free disk space there (old camera images, logs, kept records files); {waiting}")
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM")) or code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"{path} is read-only ({exc})",
                "the file system may have been remounted read-only after a disk error (see dmesg): check the "
                f"disk and remount it read-write, or let the sortline user write that folder; {waiting}")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return (f"another program holds a write lock on {path} ({exc})",
                "close the program that has it open for writing (a database browser, a backup or copy "
                f"script); open it read-only instead (sqlite3 -readonly, or ?mode=ro); {waiting}")
    if name.startswith("SQLITE_IOERR") or isinstance(exc, OSError):
        return (f"the disk fails writing {path} ({exc})",
                f"check the disk (dmesg, smartctl) and replace it if it reports errors; {waiting}")
    if name.startswith("SQLITE_CANTOPEN"):
        return (f"{path} cannot be opened ({exc})",
                f"check that the folder {path.parent} exists and that the sortline user may write it; {waiting}")
    return f"writing {path} failed ({exc})", f"check the disk and the folder {path.parent}; {waiting}"


def _moved_alarm(path: Path, kept: Path, why: _Unusable) -> tuple[str, str]:
    if why.kind == "newer":
        return (f"{path} was written by a newer sortline ({why.detail}): kept as {kept.name}, a new records "
                f"file was started",
                f"this line now runs an older version: install the newer one again and move {kept.name} back "
                f"to {path.name} to go on in it; until then the file is kept unchanged")
    if why.kind == "foreign":
        return (f"{path} was not parcel records ({why.detail}): moved to {kept.name}, a new records file was "
                f"started",
                "if another program keeps its data there, give it (or this line's [records] folder) another "
                "folder; the moved file is unchanged")
    return (f"the parcel records in {path} were damaged ({why.detail}), after a power cut or a failing disk: "
            f"kept as {kept.name}, a new records file was started",
            f"sorting goes on in the new file; copy {kept.name} off for the couriers (sqlite3 {kept.name} "
            f"'.recover' saves what is readable), then delete it; check the disk (smartctl) and the UPS")


# -- the log copied into the database ---------------------------------------------------------------
class _Checkpoints(threading.Thread):
    """Copies the write-ahead log into the database file beside the writer, without blocking it
    (PASSIVE: frames a reader still uses wait for the next round). SQLite runs the copy and its
    fsyncs with the interpreter lock released. Follows the writer to a new file (`generation`)."""

    def __init__(self, path: Path, every_s: float, generation):
        super().__init__(name="records-checkpoint", daemon=True)
        self.path, self.every_s, self.generation = path, every_s, generation
        self.done = threading.Event()
        self._db, self._seen = None, None
        self._last_error = None

    def run(self) -> None:
        wal = Path(f"{self.path}-wal")
        try:
            while not self.done.wait(self.every_s):
                try:
                    db = self._connection()
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    if wal.exists() and wal.stat().st_size > WAL_LIMIT_BYTES:
                        log.info("parcel records' log passed %d MB: emptied, writes wait meanwhile",
                                 WAL_LIMIT_BYTES >> 20)
                        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._last_error = None
                except (sqlite3.Error, OSError) as exc:
                    if str(exc) != self._last_error:      # once per cause: the writer's alarm says the rest
                        log.warning("parcel records not copied from their log into %s yet: %s", self.path, exc)
                    self._last_error = str(exc)
        finally:
            if self._db is not None:
                self._db.close()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None or self._seen != self.generation():
            if self._db is not None:
                self._db.close()
                self._db = None
            self._seen = self.generation()
            # mode=rw: never create the file while the writer moves a damaged one aside
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        return self._db


# -- rows waiting for the writer ---------------------------------------------------------------------
@dataclass(slots=True)
class _Row:
    kind: str                       # decided, sent, confirmed, action, renumbered
    key: tuple | None               # (plc_boot, tracking)
    at_wall: float                  # when the caller asked: rows written late keep their time
    values: tuple
    new: bool = False               # decided: a new parcel even within reuse_after_s
    # The same moment on the monotonic clock: which row a later call belongs to is decided on it,
    # so that a wall clock set back or forward mid-shift never splits a parcel into two rows.
    at_mono: float = field(default_factory=time.monotonic)
    future: asyncio.Future | None = None
    loop: asyncio.AbstractEventLoop | None = None


def _set_result(future: asyncio.Future, ok: bool) -> None:
    if not future.done():
        future.set_result(ok)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _settle(row: _Row, ok: bool) -> None:
    """Tell the caller awaiting `row` whether it is committed; once."""
    future, row.future = row.future, None
    if future is None:
        return
    if row.loop is _running_loop():
        _set_result(future, ok)
        return
    try:
        row.loop.call_soon_threadsafe(_set_result, future, ok)
    except RuntimeError:
        pass                       # the loop is closed: nobody waits any more


class _Backlog:
    """Rows waiting for the writer thread, oldest first, at most `limit` (then the oldest is dropped).

    Callers only take the lock for an append; the writer never holds it during SQL.
    """

    def __init__(self, limit: int):
        self.cond = threading.Condition()
        self.rows: collections.deque[_Row] = collections.deque()
        self.limit = limit
        self.taken = 0             # rows at the front being written now: never dropped meanwhile
        self.dropped = 0
        self.refusing = False      # the last write failed: new rows are parked at once
        self.wake = False
        self.stopping = False
        self.abandon = False
        self.rounds = 0

    def __len__(self) -> int:
        return len(self.rows)

    def put(self, row: _Row) -> list[_Row]:
        """Queue `row`; return the rows dropped to make room."""
        dropped = []
        with self.cond:
            while len(self.rows) >= self.limit and len(self.rows) > self.taken:
                dropped.append(self.rows[self.taken])
                del self.rows[self.taken]
            self.dropped += len(dropped)
            self.rows.append(row)
            if self.refusing:
                _settle(row, False)
            self.cond.notify_all()
        for old in dropped:
            _settle(old, False)
        return dropped

    def take(self, most: int, has_chore) -> list[_Row] | None:
        """The next rows to write ([] for a chore), after a pause while the database refuses; None: stop."""
        with self.cond:
            if self.refusing:
                self.cond.wait_for(lambda: self.wake or self.abandon, RETRY_S)
            self.cond.wait_for(lambda: self.rows or self.stopping or self.abandon or has_chore())
            self.wake = False
            if self.abandon or (self.stopping and not self.rows):
                return None
            self.taken = min(most, len(self.rows))
            return list(itertools.islice(self.rows, self.taken))

    def written(self, n: int) -> None:
        with self.cond:
            for _ in range(n):
                self.rows.popleft()
            self.taken = 0
            self.refusing = False

    def refused(self) -> None:
        """The database refused: every row waiting is parked (its caller stops waiting)."""
        with self.cond:
            self.taken = 0
            if not self.refusing:
                self.refusing = True
                for row in self.rows:
                    if row.future is not None:
                        _settle(row, False)

    def release(self) -> None:
        """The rows taken were not written: they stay at the front."""
        with self.cond:
            self.taken = 0

    def drop_front(self) -> _Row:
        with self.cond:
            self.taken = 0
            return self.rows.popleft()

    def round_done(self) -> None:
        with self.cond:
            self.rounds += 1
            self.cond.notify_all()

    def flush(self, wait_s: float) -> bool:
        with self.cond:
            self.wake = True
            self.cond.notify_all()
            if wait_s > 0:
                start = self.rounds
                self.cond.wait_for(lambda: not self.rows or (self.refusing and self.rounds > start), wait_s)
            return not self.rows


def _packed(plc_boot: int, tracking: int) -> int:
    """One integer for a parcel's (BOOT_ID, tracking number): a u16 and a u32 on every PLC link."""
    if not (0 <= plc_boot < 1 << 31 and 0 <= tracking < 1 << 32):
        raise ValueError(f"PLC boot id {plc_boot} or tracking number {tracking} out of range (u16, u32)")
    return (plc_boot << 32) | tracking


# -- the records ------------------------------------------------------------------------------------
class Records:
    """The line's per-parcel records and logbook in `folder`/parcels.sqlite.

    `reuse_after_s` is the longest a parcel can be on the belt: a (plc_boot, tracking) seen again
    within it is the same parcel (the controller restarted), later it is a new parcel (the PLC's
    memory was reset and it counts again). Alarms raised: records_corrupt (a file moved aside),
    records_write (writes refused), records_backlog (rows waiting in memory).
    """

    def __init__(self, folder, retention_days: float | None = None, checkpoint_thread: bool = True, *,
                 alarms: Alarms | None = None, reuse_after_s: float = 600.0):
        self.folder = Path(folder)
        self.path = self.folder / DB_NAME
        self.alarms = alarms if alarms is not None else Alarms()
        self.reuse_after_s = reuse_after_s
        self.retention_s = retention_days * 86400 if retention_days else None
        self.error: str | None = None          # the cause while the database refuses writes
        self.write_errors = 0
        self.generation = 0                    # counts the database files opened (a new one after damage)
        self._own_checkpoints = checkpoint_thread
        self._backlog = _Backlog(MAX_PENDING)
        self._recent = RecentTable(RECENT_PARCELS, fields=1)   # packed key -> scanned_mono, sent
        self._reused: dict = {}                # key -> monotonic time it was found reused
        self._highest_seq: dict[int, int] = {}  # plc_boot -> highest scan_seq decided
        self._renumbered_id: dict[int, int] = {}   # writer's: plc_boot -> last row id before its renumbering
        # writer's: packed key -> monotonic time decided, row id; rows this process wrote
        self._row_ids = RecentTable(RECENT_PARCELS, fields=1)
        self._txn_ids: dict = {}
        self._reused_lock = threading.Lock()
        self._prune_job: tuple[int, concurrent.futures.Future] | None = None
        self._isolating = 0                    # rows to write one per commit, to find one SQLite cannot store
        self._closed = False
        self._lock_fd = self._lock_folder()
        self._wdb: sqlite3.Connection | None = None     # the writer's; only the writer thread uses it once started
        self._open_for_writing()
        self.db = self._caller_connection()   # start-up reads and tools; sorting never writes through it
        self._remember_recent()
        self._checkpoints = (_Checkpoints(self.path, CHECKPOINT_EVERY_S, lambda: self.generation)
                             if checkpoint_thread else None)
        if self._checkpoints:
            self._checkpoints.start()
        self._writer = threading.Thread(target=self._write_loop, name="records-writer", daemon=True)
        self._writer.start()

    # -- what the controller calls: queue and return ------------------------------------------------
    @property
    def pending(self) -> int:
        """Rows not written yet (truthy while any wait)."""
        return len(self._backlog)

    def decided(self, *, plc_boot, tracking, scan_seq, read, decision, plan_version, times,
                new_parcel: bool = False, weighing=None) -> asyncio.Future | None:
        """Queue the parcel's decision. On an event loop, returns a future that becomes True once the
        row is committed and False when it waits in memory because the database refuses it.

        The row of the same (plc_boot, tracking) scanned within reuse_after_s is updated (the
        controller restarted and decides it again); otherwise, or with `new_parcel` (the link
        knows the number came again for another parcel), the parcel gets a row of its own.
        `weighing` (edge/scale.py's Weighing): the scale's, when it came before the decision.
        """
        now_mono = time.monotonic()
        key = (plc_boot, tracking)
        packed = _packed(plc_boot, tracking)
        scanned_mono = self._recent.time_of(packed)
        if scanned_mono is None or new_parcel or now_mono - scanned_mono >= self.reuse_after_s:
            if scanned_mono is not None:
                self._mark_reused(key)
            self._recent.put(packed, now_mono, False)
        if scan_seq > self._highest_seq.get(plc_boot, -1):
            self._highest_seq[plc_boot] = scan_seq
        values = (scan_seq, json.dumps(list(read.waybills)), read.routing_code, decision.courier,
                  decision.destination, json.dumps(read.sources), read.no_read_reason, decision.chute,
                  decision.reason.name, plan_version, times.get("image_ms"), times.get("read_ms"),
                  times.get("decide_ms"), times.get("total_ms"), *_weighed(weighing))
        row = _Row("decided", key, time.time(), values, new=new_parcel)
        row.loop = _running_loop()
        if row.loop is not None:
            row.future = row.loop.create_future()
        future = row.future
        self._queue(row)
        return future

    def sent(self, plc_boot: int, tracking: int) -> None:
        """The PLC has the parcel's assignment."""
        now_mono = time.monotonic()
        packed = _packed(plc_boot, tracking)
        scanned_mono = self._recent.time_of(packed)
        if scanned_mono is None or now_mono - scanned_mono >= self.reuse_after_s:
            scanned_mono = now_mono
        self._recent.put(packed, scanned_mono, True)
        self._queue(_Row("sent", (plc_boot, tracking), time.time(), ()))

    def confirmed(self, plc_boot: int, tracking: int, chute: int, result: str) -> None:
        """Where the PLC says the parcel went; a parcel the controller never decided gets its row here."""
        self._queue(_Row("confirmed", (plc_boot, tracking), time.time(), (chute, result)))

    def action(self, who: str, action: str, detail: str = "") -> None:
        """Technician actions, with who and when: the line's logbook."""
        self._queue(_Row("action", None, time.time(), (who, action, detail)))

    def renumbered(self, plc_boot: int) -> None:
        """The PLC numbers its parcels again under this boot id (its memory was reset): every number
        of that boot now belongs to a new parcel, rows recorded before are never updated again."""
        for packed in [k for k in self._recent.keys() if k >> 32 == plc_boot]:
            self._recent.pop(packed)
        self._highest_seq.pop(plc_boot, None)
        self._queue(_Row("renumbered", (plc_boot, None), time.time(), ()))

    def highest_scan_seq(self, plc_boot: int) -> int | None:
        """The highest scan event number decided under this boot id within reuse_after_s (and since
        its last renumbering); from memory. A PLC now below it has started counting again."""
        return self._highest_seq.get(plc_boot)

    def already_sent(self, plc_boot: int, tracking: int) -> bool:
        """A decision the PLC already has (the controller restarted after sending it); from memory."""
        entry = self._recent.get(_packed(plc_boot, tracking))
        return bool(entry and entry[1][0] and time.monotonic() - entry[0] < self.reuse_after_s)

    def reused(self, plc_boot: int, tracking: int) -> bool:
        """This (plc_boot, tracking) was decided before, more than reuse_after_s earlier: the PLC counts
        again from numbers it used (its memory was reset). Known once the decision's row is written
        (its future is True), or at once when this controller decided the older one itself."""
        with self._reused_lock:
            at_mono = self._reused.get((plc_boot, tracking))
        return at_mono is not None and time.monotonic() - at_mono < self.reuse_after_s

    def flush(self, wait_s: float | None = None) -> bool:
        """Have the writer try now (also a database that refused); True when nothing waits.

        On an event loop's thread it never waits: that thread sorts parcels. Elsewhere (scripts,
        tools, tests) it waits up to `wait_s` (default FLUSH_WAIT_S) for the rows to be written,
        or for the database to refuse them.
        """
        if wait_s is None:
            wait_s = 0.0 if _running_loop() else FLUSH_WAIT_S
        return self._backlog.flush(wait_s)

    def prune(self, batch: int = 2000) -> concurrent.futures.Future:
        """Have the writer delete up to `batch` rows past the retention time, once no row waits;
        small batches keep each delete short. The future gives the number deleted."""
        job = self._prune_job
        if job is not None:
            return job[1]
        future: concurrent.futures.Future = concurrent.futures.Future()
        if self.retention_s is None:
            future.set_result(0)
            return future
        self._prune_job = (batch, future)
        with self._backlog.cond:
            self._backlog.cond.notify_all()
        return future

    def disabled_chutes(self) -> set[int]:
        """Chutes a technician left disabled, from the logbook: the last word on each chute counts.
        Read at start-up, on the caller's thread."""
        disabled: set[int] = set()
        if self.db is None:
            log.warning("chutes left disabled are not known: the records cannot be read (%s)", self.error)
            return disabled
        try:
            rows = self.db.execute("SELECT action, detail FROM actions WHERE action IN"
                                   " ('disable chute', 'enable chute') ORDER BY id").fetchall()
        except sqlite3.Error as exc:
            log.error("chutes left disabled are not known: the logbook in %s cannot be read (%s)", self.path, exc)
            return disabled
        for action, detail in rows:
            try:
                chute = int(detail)
            except (TypeError, ValueError):
                continue                  # a row written by hand: not a chute number
            (disabled.add if action == "disable chute" else disabled.discard)(chute)
        return disabled

    def close(self) -> None:
        """Write what waits (CLOSE_WAIT_S at most), then stop the threads and free the folder."""
        if self._closed:
            return
        self._closed = True
        with self._backlog.cond:
            self._backlog.stopping = True
            self._backlog.cond.notify_all()
        self._writer.join(CLOSE_WAIT_S)
        if self._writer.is_alive():
            with self._backlog.cond:
                self._backlog.abandon = True
                self._backlog.cond.notify_all()
            log.error("%d parcel records were not written to %s before the controller stopped (%s): they are lost",
                      len(self._backlog), self.path, self.error or "the disk is too slow")
        if self._checkpoints:
            self._checkpoints.done.set()
            self._checkpoints.join(5.0)
        if self.db is not None:
            self.db.close()
        if self._lock_fd is not None and not self._writer.is_alive():
            os.close(self._lock_fd)       # the writer still busy keeps the folder until the process ends
            self._lock_fd = None

    # -- the caller's side ---------------------------------------------------------------------------
    def _queue(self, row: _Row) -> None:
        dropped = self._backlog.put(row)
        if dropped:
            total = self._backlog.dropped
            if total == len(dropped) or total // 10_000 != (total - len(dropped)) // 10_000:
                log.error("%d unwritten parcel records dropped so far (more than %d waited); the last: %s %s",
                          total, MAX_PENDING, dropped[-1].kind, dropped[-1].key)

    def _mark_reused(self, key: tuple) -> None:
        now_mono = time.monotonic()
        with self._reused_lock:
            if len(self._reused) > 10_000:
                self._reused = {k: t for k, t in self._reused.items() if now_mono - t < self.reuse_after_s}
            self._reused[key] = now_mono

    # -- opening ---------------------------------------------------------------------------------------
    def _lock_folder(self) -> int | None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return _take_lock(self.folder)
        except OSError as exc:
            log.error("records folder %s cannot be locked (%s): records wait in memory until it can", self.folder, exc)
            return None

    def _open_for_writing(self) -> bool:
        """Open (and check) the database for the writer; on failure, park and return False."""
        try:
            if self._lock_fd is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._lock_fd = _take_lock(self.folder)
            db, moved = open_checked(self.path, self._own_checkpoints)
        except (_Refused, RecordsLocked, sqlite3.Error, OSError) as exc:
            self._refused(exc)
            return False
        for kept, why in moved:
            self.alarms.raise_("records_corrupt", *_moved_alarm(self.path, kept, why), hold_s=MOVED_ALARM_HOLD_S)
        self._wdb = db
        self._renumbered_id = {}              # row ids of another file
        self._row_ids.clear()
        self.generation += 1
        return True

    def _caller_connection(self) -> sqlite3.Connection | None:
        if self._wdb is None:
            # The writer cannot use the file now (full, locked): what it holds is still read here,
            # read-only, and nothing is created behind the writer's back.
            if not self.path.is_file():
                return None
            try:
                return sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                       check_same_thread=False, timeout=WRITE_WAIT_MS / 1000)
            except sqlite3.Error:
                return None
        db = _connect(self.path)
        db.execute(f"PRAGMA busy_timeout={WRITE_WAIT_MS}")
        if self._own_checkpoints:
            db.execute("PRAGMA wal_autocheckpoint=0")
        return db

    def _remember_recent(self) -> None:
        """Parcels scanned within reuse_after_s, for already_sent() after a restart."""
        if self.db is None:
            return
        now_wall, now_mono = time.time(), time.monotonic()
        try:
            rows = self.db.execute("SELECT plc_boot, tracking, sent, scanned_wall, scan_seq FROM parcels"
                                   " WHERE scanned_wall >= ? ORDER BY scanned_wall, id",
                                   (now_wall - self.reuse_after_s,)).fetchall()
        except sqlite3.Error as exc:
            log.error("recent parcels not read from %s (%s): a restart may decide some of them again",
                      self.path, exc)
            return
        for boot, tracking, sent, scanned_wall, scan_seq in rows:       # the newest row of a key counts
            self._recent.put(_packed(boot, tracking), now_mono - (now_wall - scanned_wall), bool(sent))
            if scan_seq > self._highest_seq.get(boot, -1):
                self._highest_seq[boot] = scan_seq

    # -- the writer thread -----------------------------------------------------------------------------
    def _write_loop(self) -> None:
        try:
            while True:
                rows = self._backlog.take(BATCH_ROWS if not self._isolating else 1,
                                          lambda: self._prune_job is not None)
                if rows is None:
                    break
                if rows:
                    self._write(rows)
                elif self._prune_job is not None:
                    self._prune()
                self._backlog.round_done()
                self._note_backlog()
        except BaseException as exc:            # a fault here must be seen: rows would wait for ever
            log.exception("the records writer stopped")
            self.error = f"the records writer stopped: {exc!r}"
            self.alarms.raise_("records_write", self.error, "restart the controller (systemctl restart sortline); "
                               "report the log lines above to the developers")
            raise
        finally:
            if self._wdb is not None:
                self._wdb.close()
                self._wdb = None

    def _write(self, rows: list[_Row]) -> None:
        if self._wdb is None and not self._open_for_writing():
            self._backlog.refused()
            return
        try:
            self._commit(rows)
        except ROW_ERRORS as exc:
            self._bad_row(rows, exc)
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):
                self._damaged_mid_run(exc)
            else:
                self._refused(exc)
                self._backlog.refused()
        except OSError as exc:
            self._refused(exc)
            self._backlog.refused()
        else:
            self._backlog.written(len(rows))
            self._isolating = max(0, self._isolating - len(rows))
            for row in rows:
                _settle(row, True)
            self._accepted()

    def _commit(self, rows: list[_Row]) -> None:
        db = self._wdb
        db.execute("BEGIN IMMEDIATE")
        self._txn_ids = {}           # row ids of this transaction: known once it is committed
        try:
            for row in rows:
                self._apply(db, row)
            db.execute("COMMIT")
            for key, known in self._txn_ids.items():
                self._remember_id(key, *known)
        except BaseException:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass             # the commit's own error is the one to report
            raise

    def _apply(self, db: sqlite3.Connection, row: _Row) -> None:
        if row.kind == "action":
            db.execute(INSERT_ACTION, (row.at_wall, *row.values))
            return
        boot, tracking = row.key
        if row.kind == "renumbered":
            self._renumbered_id[boot] = db.execute("SELECT coalesce(max(id), 0) FROM parcels").fetchone()[0]
            return
        target = self._target(db, row)
        if row.kind == "decided":
            if target is not None and not row.new:      # decided again after a controller restart
                db.execute(UPDATE_DECIDED, (*row.values, target))
                self._txn_ids[row.key] = (target, row.at_mono)
                return
            if db.execute(ANY_ROW, (boot, tracking)).fetchone():
                self._mark_reused(row.key)
            cursor = db.execute(INSERT_DECIDED, (boot, tracking, row.at_wall, *row.values))
            self._txn_ids[row.key] = (cursor.lastrowid, row.at_mono)
        elif row.kind == "sent":
            if target is not None:
                db.execute("UPDATE parcels SET sent = 1 WHERE id = ?", (target,))
        elif row.kind == "confirmed":
            chute, result = row.values
            if target is not None:
                db.execute("UPDATE parcels SET confirmed_chute = ?, confirmed_result = ? WHERE id = ?",
                           (chute, result, target))
            else:
                cursor = db.execute(INSERT_CONFIRMED, (boot, tracking, row.at_wall, chute, "PLC_" + result, chute,
                                                       result))
                self._txn_ids[row.key] = (cursor.lastrowid, row.at_mono)

    def _target(self, db: sqlite3.Connection, row: _Row) -> int | None:
        """The newest row of this parcel: one decided within reuse_after_s of this call, since the
        PLC's last renumbering. Rows this process wrote are known by the monotonic clock; older
        ones (a controller restart) are looked up by their wall-clock time."""
        boot, tracking = row.key
        since_id = self._renumbered_id.get(boot, 0)
        known = self._txn_ids.get(row.key)
        if known is None:
            kept = self._row_ids.get(_packed(*row.key))
            known = None if kept is None else (kept[1][0], kept[0])
        if known is not None:
            row_id, decided_mono = known
            return row_id if row.at_mono - decided_mono < self.reuse_after_s and row_id > since_id else None
        return db.execute(NEWEST_ROW, (boot, tracking, row.at_wall - self.reuse_after_s, since_id)).fetchone()[0]

    def _remember_id(self, key: tuple, row_id: int, at_mono: float) -> None:
        self._row_ids.put(_packed(*key), at_mono, row_id)

    def _bad_row(self, rows: list[_Row], exc: Exception) -> None:
        """A value SQLite cannot store: find the row (one per commit) and drop it, keep the others."""
        self._backlog.release()
        if len(rows) > 1:
            self._isolating = len(rows)
            return
        row = self._backlog.drop_front()
        self._isolating = max(0, self._isolating - 1)
        _settle(row, False)
        log.error("a parcel record that cannot be stored was dropped (%s): %s %s %r", exc, row.kind, row.key,
                  row.values)

    def _damaged_mid_run(self, exc: sqlite3.DatabaseError) -> None:
        """The file was damaged while in use: move it aside and go on in a new one; rows wait meanwhile."""
        log.error("parcel records in %s found damaged while writing: %s", self.path, exc)
        self._wdb.close()
        self._wdb = None
        try:
            kept = _move_aside(self.path, "corrupt")
        except OSError as move_exc:
            self._refused(_Refused(f"{self.path} is damaged ({exc}) and cannot be moved aside ({move_exc})",
                                   f"move {self.path} out of {self.folder} by hand, or free that folder for writing"))
            self._backlog.refused()
            return
        self.alarms.raise_("records_corrupt", *_moved_alarm(self.path, kept, _Unusable("corrupt", str(exc))),
                           hold_s=MOVED_ALARM_HOLD_S)
        if not self._open_for_writing():      # the next round writes the rows into the new file
            self._backlog.refused()

    def _refused(self, exc: BaseException) -> None:
        self.write_errors += 1
        cause, remedy = refusal(exc, self.path)
        if self.error is None:
            log.error("parcel records cannot be written to %s: %s; keeping them in memory", self.path, exc)
        self.error = cause
        self.alarms.raise_("records_write", cause, remedy)

    def _accepted(self) -> None:
        if self.error is not None:
            log.info("parcel records are written again to %s", self.path)
            self.error = None
            self.alarms.clear("records_write")

    def _note_backlog(self) -> None:
        """Alarm while rows wait because the database refuses them (or the disk cannot keep up)."""
        waiting, dropped = len(self._backlog), self._backlog.dropped
        lost = f"; {_about(dropped)} were dropped, the oldest first, past {MAX_PENDING} waiting" if dropped else ""
        if waiting and (self.error is not None or waiting >= BACKLOG_ALARM_ROWS):
            why = ("they are written as soon as the records database accepts them (see the records_write alarm)"
                   if self.error is not None else
                   f"the disk of {self.folder} writes slower than parcels arrive: check it (iostat, smartctl)")
            self.alarms.raise_("records_backlog", f"{_about(waiting)} parcel records wait in memory{lost}",
                               f"{why}; a restart of the controller now loses them")
        elif not waiting and self.alarms.is_active("records_backlog"):
            if dropped:
                self.alarms.raise_("records_backlog", f"{dropped} parcel records were lost while the records "
                                   f"database refused writes (more than {MAX_PENDING} waited)",
                                   "the rest are written; keep the disk from filling up again",
                                   hold_s=LOST_ALARM_HOLD_S)
            else:
                self.alarms.clear("records_backlog")

    def _prune(self) -> None:
        batch, future = self._prune_job
        deleted = 0
        if self._wdb is not None and not self._backlog.rows:
            try:
                deleted = self._wdb.execute(
                    "DELETE FROM parcels WHERE id IN (SELECT id FROM parcels WHERE scanned_wall < ?"
                    " ORDER BY scanned_wall LIMIT ?)", (time.time() - self.retention_s, batch)).rowcount
            except sqlite3.Error as exc:
                log.warning("old records not deleted: %s", exc)
        self._prune_job = None
        future.set_result(deleted)


def _about(n: int) -> str:
    """A count that changes its wording rarely (the alarm is logged when its text changes): once
    per power of ten, so that a backlog growing by thousands logs a handful of lines."""
    if n < 10:
        return "a few"
    return f"over {10 ** (len(str(n)) - 1):,}"
