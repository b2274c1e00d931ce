"""Log lines under systemd carry their journald priority; elsewhere they stay as they were."""
import logging
import os
import subprocess
import sys

from edge.journal_log import PriorityFormatter, priority_of, under_journald
from tests.conftest import REPO


def record(level: int, msg: str, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("sortline.edge", level, __file__, 1, msg, (), exc_info)


def test_each_level_gets_its_syslog_priority():
    assert [priority_of(level) for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR,
                                             logging.CRITICAL, logging.INFO + 5)] == [7, 6, 4, 3, 2, 6]


def test_every_line_of_a_record_carries_the_priority_a_traceback_included():
    try:
        raise ValueError("bad register")
    except ValueError:
        text = PriorityFormatter("%(levelname)s %(message)s").format(
            record(logging.ERROR, "PLC link failed", sys.exc_info()))
    lines = text.splitlines()
    assert lines[0] == "<3>ERROR PLC link failed" and len(lines) > 3
    assert all(line.startswith("<3>") for line in lines)
    assert lines[-1] == "<3>ValueError: bad register"


def test_the_journal_stream_is_recognised_by_its_device_and_inode(tmp_path, monkeypatch):
    with open(tmp_path / "stderr", "w") as stream, open(tmp_path / "other", "w") as other:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert under_journald(stream)
        assert not under_journald(other), "stderr redirected elsewhere by the service: no prefixes"
    monkeypatch.delenv("JOURNAL_STREAM")
    with open(tmp_path / "stderr") as stream:
        assert not under_journald(stream)


def test_the_sortline_command_prefixes_its_lines_only_under_the_journal(tmp_path):
    """The logging every `sortline` command sets up (edge.cli.setup_logging), in a process of its own
    whose stderr is a file: with $JOURNAL_STREAM naming that file, each line starts with its priority."""
    def run(journal: bool) -> str:
        path = tmp_path / ("journal" if journal else "plain")
        with open(path, "w") as err:
            st = os.fstat(err.fileno())
            env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}" if journal else ""}
            subprocess.run([sys.executable, "-c", "import logging, edge.cli as c; c.setup_logging(); "
                            "logging.getLogger('sortline.edge').warning('belt slow'); "
                            "logging.getLogger('sortline.edge').info('plan loaded')"],
                           cwd=REPO, env=env, stderr=err, timeout=60, check=True)
        return path.read_text()
    journal, plain = run(True), run(False)
    assert journal.splitlines() == ["<4>WARNING sortline.edge: belt slow", "<6>INFO sortline.edge: plan loaded"]
    assert not plain.startswith("<") and plain.splitlines()[0].endswith("WARNING sortline.edge: belt slow")
