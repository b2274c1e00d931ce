"""The records as the screen reads them: read-only, through one connection in a worker thread of
its own, so that the event loop never waits on the disk (the live view, the manual coding table)."""
import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor

from drivers.timed_awaits import bounded

DB_TIMEOUT_S = 2.0


class ReadOnlyRecords:
    def __init__(self, path, thread_name: str):
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        """The connection, opened on first use: in the worker thread, never on the event loop."""
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                       timeout=DB_TIMEOUT_S)
        return self._db

    async def _in_worker(self, fn, *args):
        """fn(*args) in the worker thread, bounded by twice the database's own wait."""
        loop = asyncio.get_running_loop()
        # Not asyncio.wait_for: in Python 3.11 it loses a cancellation that arrives as the query
        # finishes, and the screen's feed then never stopped (bounded keeps it).
        return await bounded(loop.run_in_executor(self._pool, fn, *args), DB_TIMEOUT_S * 2)

    def close(self) -> None:
        self._pool.submit(self._close_db)
        self._pool.shutdown(wait=True)

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
