"""Arrivals at the scan point: fixed pitch, Poisson, and replayed traces with their checks."""
import itertools

import numpy as np
import pytest

from sim_plc.arrivals import ArrivalError, fixed_pitch, poisson, read_trace


def test_fixed_pitch_spaces_parcel_heads_by_speed_times_the_interval():
    got = list(itertools.islice(fixed_pitch(12000, 2.0), 4))
    assert [a.at_m for a in got] == pytest.approx([0.0, 0.6, 1.2, 1.8])


def test_poisson_keeps_the_mean_rate_and_never_breaks_the_minimum_gap():
    got = list(itertools.islice(poisson(7200, 2.0, seed=5, length_m=0.4, gap_m=0.1), 4001))
    pitch = np.diff([a.at_m for a in got])
    assert pitch.min() >= 0.5 - 1e-9
    assert pitch.mean() == pytest.approx(2.0 * 3600 / 7200, rel=0.05)
    again = list(itertools.islice(poisson(7200, 2.0, seed=5), 10))
    assert [a.at_m for a in again] == [a.at_m for a in got[:10]]


def test_a_rate_the_belt_cannot_carry_is_refused_with_the_largest_that_fits():
    with pytest.raises(ArrivalError, match=r"use at most 14400 parcels/h"):
        next(fixed_pitch(20000, 2.0, length_m=0.4, gap_m=0.1))


def write(tmp_path, text: str):
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


def test_a_trace_replays_scan_times_and_sizes(tmp_path):
    path = write(tmp_path, "# from line 2, morning wave\nt_s,length_mm,weight_kg\n"
                           "100.0,300,1.5\n100.5,,\n101.25,600,12\n")
    got = read_trace(path, 2.0)
    assert [a.at_m for a in got] == pytest.approx([0.0, 1.0, 2.5])
    assert [a.length_m for a in got] == pytest.approx([0.3, 0.4, 0.6])
    assert [a.weight_kg for a in got] == [1.5, None, 12.0]


def test_a_trace_with_iso_timestamps(tmp_path):
    path = write(tmp_path, "timestamp\n2026-11-28T08:00:00.000\n2026-11-28T08:00:00.500\n")
    assert [a.at_m for a in read_trace(path, 2.0)] == pytest.approx([0.0, 1.0])


@pytest.mark.parametrize("text, message", [
    ("t_s,lenght_mm\n1,300\n", r"trace.csv:1: unknown column 'lenght_mm' \(did you mean 'length_mm'\?\)"),
    ("length_mm\n300\n", "exactly one time column"),
    ("t_s,timestamp\n1,2\n", "exactly one time column"),
    ("t_s\n1\n0.5\n", r"trace.csv:3: t_s goes back in time"),
    ("t_s,length_mm\n1,500\n1.1,500\n", r"trace.csv:3: .*100 ms after the one before, which is 500 mm long and needs 250 ms"),
    ("t_s,weight_kg\n1,heavy\n", r"weight_kg = 'heavy' is not a number"),
    ("t_s,length_mm\n1,4\n", r"length_mm = 4 is outside 50-2000: check the unit"),
    ("t_s\n\n", "header but no parcels"),
    ("", "trace is empty"),
    ("timestamp\nyesterday\n", "not an ISO 8601"),
    ("t_s\n1,2\n", "more values than the header"),
])
def test_bad_traces_say_where_and_what_to_do(tmp_path, text, message):
    with pytest.raises(ArrivalError, match=message):
        read_trace(write(tmp_path, text), 2.0)


def test_a_missing_trace_file_says_so(tmp_path):
    with pytest.raises(ArrivalError, match="cannot read the arrival trace"):
        read_trace(tmp_path / "nope.csv", 2.0)
