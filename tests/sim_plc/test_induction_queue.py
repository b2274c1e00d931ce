"""Replaying a trace denser than the belt allows: refused by default, queued at the induction on request."""
import asyncio
import json

import pytest

from sim_plc.arrivals import ArrivalError, queue_summary, read_trace

from .helpers import line_config
from .test_cli import sim

pytestmark = pytest.mark.timeout(60)

# At 2 m/s a 500 mm parcel needs 250 ms to clear the photo-eye, 300 ms with a 100 mm gap.
DENSE = "t_s,length_mm\n10.0,500\n10.1,500\n10.2,500\n12.0,500\n"


def write(tmp_path, text=DENSE):
    path = tmp_path / "dense.csv"
    path.write_text(text)
    return path


def test_a_dense_trace_is_refused_with_the_queue_as_a_remedy(tmp_path):
    with pytest.raises(ArrivalError, match=r"dense.csv:3: .*100 ms after the one before.*--queue-at-induction"):
        read_trace(write(tmp_path), 2.0)


def test_queued_parcels_wait_for_the_one_before_plus_the_gap(tmp_path):
    got = read_trace(write(tmp_path), 2.0, queue_gap_m=0.1)
    assert [a.at_m for a in got] == pytest.approx([0.0, 0.6, 1.2, 4.0])
    # The third waits for the second, which waited too: the queue carries over.
    assert [a.delay_s for a in got] == pytest.approx([0.0, 0.2, 0.4, 0.0])
    q = queue_summary(got)
    assert (q["parcels"], q["delayed"], q["delay_max_s"]) == (4, 2, pytest.approx(0.4))
    assert 0.2 < q["delay_p95_s"] <= 0.4


def test_a_trace_the_belt_can_carry_waits_nowhere(tmp_path):
    got = read_trace(write(tmp_path, "t_s,length_mm\n0,300\n0.5,300\n1.0,300\n"), 2.0, queue_gap_m=0.1)
    assert [a.at_m for a in got] == pytest.approx([0.0, 1.0, 2.0])
    assert queue_summary(got)["delayed"] == 0


def test_the_gap_is_kept_even_where_the_trace_only_just_clears_the_eye(tmp_path):
    """Parcels that touch in the trace (no overlap, no gap) are accepted as recorded, or gapped when queued."""
    path = write(tmp_path, "t_s,length_mm\n0,400\n0.2,400\n")
    assert [a.at_m for a in read_trace(path, 2.0)] == pytest.approx([0.0, 0.4])
    assert [a.at_m for a in read_trace(path, 2.0, queue_gap_m=0.1)] == pytest.approx([0.0, 0.5])


async def run_sim(tmp_path, port, *args):
    config = line_config(tmp_path, port)
    proc = await sim("--config", str(config.path), "--trace", str(write(tmp_path)), "--camera", "off",
                     "--no-wait", "--no-realtime", *args)
    out, err = await asyncio.wait_for(proc.communicate(), 45)
    return proc.returncode, out.decode(), err.decode()


async def test_the_simulator_refuses_a_dense_trace_and_names_the_option(tmp_path, port):
    code, out, err = await run_sim(tmp_path, port)
    assert code == 1 and "--queue-at-induction" in err and "100 ms after the one before" in err, err[-2000:]


async def test_the_simulator_queues_a_dense_trace_on_request(tmp_path, port):
    code, out, err = await run_sim(tmp_path, port, "--queue-at-induction", "--report", str(tmp_path / "r.json"))
    assert code == 0, err[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["parcels"] == 4
    assert report["induction_queue"] == {"parcels": 4, "delayed": 2, "delay_max_s": pytest.approx(0.4, abs=1e-3),
                                         "delay_p95_s": pytest.approx(0.39, abs=1e-3)}
    # The PLC saw them with the gap the belt needs: heads 300 ms apart at least.
    scans = [r["scan_s"] for r in sorted(report["records"], key=lambda r: r["index"])]
    assert all(b - a >= 0.3 - 0.002 for a, b in zip(scans, scans[1:])), scans
    assert "2 of 4 parcels wait at the induction" in err


async def test_queueing_needs_a_trace(tmp_path, port):
    config = line_config(tmp_path, port)
    proc = await sim("--config", str(config.path), "--camera", "off", "--queue-at-induction")
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and "give --trace FILE too" in err.decode()
