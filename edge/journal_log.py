"""Log lines with their journald priority when systemd takes the controller's standard error.

systemd reads a `<N>` at the start of each line as its syslog priority (SyslogLevelPrefix=, on by
default), so `journalctl -p warning -u sortline` shows warnings and worse, and errors stand out in
red. The journal stamps each line itself, so the time is left out there.
"""
import logging
import os
import sys

PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def under_journald(stream=None) -> bool:
    """True when `stream` (standard error) is the journal's stream, as $JOURNAL_STREAM names it."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def priority_of(levelno: int) -> int:
    for level in sorted(PRIORITY, reverse=True):
        if levelno >= level:
            return PRIORITY[level]
    return 7


class PriorityFormatter(logging.Formatter):
    """Every line of a record (a traceback included) starts with the record's priority."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority_of(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines() or [""])


def journald_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PriorityFormatter("%(levelname)s %(name)s: %(message)s"))
    return handler
