"""The controller's machine state: one name and one sentence a person at the line can act on."""
import enum
import logging
import time
from dataclasses import dataclass

from drivers.regmap import LineState

log = logging.getLogger("sortline.state")


class State(str, enum.Enum):
    BOOTING = "booting"
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    FAULTED = "faulted"
    ESTOP = "e-stop"
    PLC_LINK_LOST = "plc-link-lost"


@dataclass(frozen=True)
class StateReport:
    state: State
    message: str | None          # cause and remedy; None when all is well
    since_wall: float


def derive(*, booted: bool, link_status, link_address: str, line_state, has_run: bool,
           records_error: str | None, camera_problem: str | None = None,
           not_deciding: str | None = None, records_remedy: str | None = None) -> tuple[State, str | None]:
    """The state from what the controller knows now; the most urgent condition wins."""
    if not booted:
        return State.BOOTING, "starting: loading the sort plan and label readers, connecting to the PLC"
    if not link_status.connected:
        since = link_status.lost_since_wall
        when = time.strftime("%H:%M:%S", time.localtime(since)) if since else "start-up"
        return State.PLC_LINK_LOST, (
            f"PLC link lost since {when}: {link_status.last_error or 'no answer'}; check the cable and the PLC "
            f"at {link_address}; the PLC sends parcels to the end chute meanwhile and sorting resumes on its "
            f"own when it answers")
    if line_state == LineState.ESTOP:
        return State.ESTOP, "emergency stop pressed at the line: clear the cause, release the stop, restart the belt"
    if line_state in (LineState.JAM, LineState.FAULT):
        what = "a jam" if line_state == LineState.JAM else "a fault"
        return State.FAULTED, f"the PLC reports {what}: clear it at the line and restart the belt from the panel"
    if not_deciding:
        return State.FAULTED, not_deciding
    if records_error:
        remedy = records_remedy or ("free disk space in the records folder; sorting continues and records are "
                                    "kept in memory until then")
        return State.FAULTED, f"parcel records cannot be written ({records_error}): {remedy}"
    if camera_problem and line_state == LineState.RUNNING:
        return State.FAULTED, camera_problem
    if line_state == LineState.RUNNING:
        return State.RUNNING, None
    if has_run:
        return State.PAUSED, "the belt is stopped: start it from the panel"
    return State.READY, "connected to the PLC; waiting for the belt to start"


class StateTracker:
    def __init__(self):
        self.report = StateReport(State.BOOTING, None, time.time())

    def update(self, state: State, message: str | None) -> StateReport:
        if state != self.report.state or message != self.report.message:
            if state != self.report.state:
                level = logging.INFO if state in (State.RUNNING, State.READY, State.PAUSED) else logging.ERROR
                log.log(level, "state %s -> %s%s", self.report.state.value, state.value,
                        f": {message}" if message else "")
            self.report = StateReport(state, message,
                                      self.report.since_wall if state == self.report.state else time.time())
        return self.report
