"""The machine state says what is wrong and what to do, the most urgent condition first."""
from drivers.link import LinkStatus
from drivers.regmap import LineState
from edge.state import State, StateTracker, derive


def state(**kw):
    args = dict(booted=True, link_status=LinkStatus(connected=True), link_address="10.0.0.5:502",
                line_state=LineState.RUNNING, has_run=True, records_error=None)
    args.update(kw)
    return derive(**args)


def test_running_when_all_is_well():
    assert state() == (State.RUNNING, None)


def test_booting_before_the_readers_are_loaded():
    assert state(booted=False)[0] == State.BOOTING


def test_link_lost_names_the_address_and_the_remedy():
    s, message = state(link_status=LinkStatus(connected=False, last_error="read timed out", lost_since_wall=0.0))
    assert s == State.PLC_LINK_LOST
    assert "PLC link lost since" in message and "10.0.0.5:502" in message and "check the cable" in message
    assert "resumes on its own" in message


def test_link_loss_outranks_everything_the_plc_would_say():
    assert state(link_status=LinkStatus(connected=False), line_state=LineState.ESTOP)[0] == State.PLC_LINK_LOST


def test_estop_jam_and_stopped_belt():
    assert state(line_state=LineState.ESTOP)[0] == State.ESTOP
    s, message = state(line_state=LineState.JAM)
    assert s == State.FAULTED and "jam" in message
    assert state(line_state=LineState.STOPPED, has_run=False)[0] == State.READY
    assert state(line_state=LineState.STOPPED, has_run=True)[0] == State.PAUSED


def test_records_failure_is_a_fault_that_keeps_sorting():
    s, message = state(records_error="database or disk is full")
    assert s == State.FAULTED and "free disk space" in message and "sorting continues" in message


def test_tracker_keeps_the_time_a_state_began():
    t = StateTracker()
    first = t.update(State.RUNNING, None)
    again = t.update(State.RUNNING, None)
    assert again.since_wall == first.since_wall
    assert t.update(State.PLC_LINK_LOST, "x").state == State.PLC_LINK_LOST
