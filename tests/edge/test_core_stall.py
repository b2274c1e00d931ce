"""edge/bench/core_stall.py: the core taken away for `sortline bench e2e --take-core`."""
import os
import subprocess
import sys
import time

import pytest

from edge.bench import e2e as bench
from edge.bench.core_stall import parse
from tests.conftest import REPO


def test_a_stall_takes_its_share_of_one_core_and_nothing_else():
    proc = subprocess.Popen([sys.executable, "-m", "edge.bench.core_stall", "0", "20", "100"], cwd=REPO)
    try:
        time.sleep(0.5)                                  # started, pinned, looping
        t0 = _cpu_s(proc.pid)
        time.sleep(1.0)
        share = _cpu_s(proc.pid) - t0
        assert os.sched_getaffinity(proc.pid) == {0}
        assert 0.12 <= share <= 0.35, share              # 20 ms in every 100 ms, on a busy CI machine
    finally:
        proc.kill()
        proc.wait()


def _cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("text, message", [
    ("1,20", "write CORE,BURST_MS,PERIOD_MS"),
    ("99,20,200", "core 99 is not one of this machine's"),
    ("0,200,100", "shorter than the period"),
    ("0.5,20,200", "core 0.5 is not one"),
])
def test_a_stall_that_cannot_be_is_refused_with_what_to_write(text, message):
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_the_bench_refuses_a_bad_stall_before_it_starts(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--take-core", "1,300,200"])
    assert "shorter than the period" in capsys.readouterr().err
