"""Plan schedules: which plan is in force when, the config's checks, and the switch on a running line.

The shift tests run the real controller against the simulated PLC in its own process; the
schedule's clock is handed to the controller (build_controller(plan_clock=...)) and put a second
or two before the switch once parcels flow. Nothing else's time is touched.
"""
import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from edge.config import ConfigError, load_config
from edge.plan_schedule import Schedule, Slot
from edge.replay import load_deciders, load_parcels, replay
from edge.run import build_controller
from tests.conftest import REPO
from tests.edge.config_files import LINE, PLAN, write
from tests.edge.shift_runner import private_copy

MONDAY = datetime(2026, 12, 7)          # a Monday
SCHEDULE = """
[[plan.schedule]]
file = "{file}"
days = {days}
from = "{start}"
until = "{end}"
"""


def entry(file="morning.plan.toml", days='["mon", "tue", "wed", "thu", "fri", "sat"]', start="06:00",
          end="12:30") -> str:
    return SCHEDULE.format(file=file, days=days, start=start, end=end)


# -- which plan when --------------------------------------------------------------------------------
def test_entries_apply_from_their_start_until_their_end_and_the_line_plan_otherwise():
    morning = Slot(1, Path("morning"), frozenset(range(6)), 6 * 60, 12 * 60 + 30)
    night = Slot(2, Path("night"), frozenset({4}), 22 * 60, 5 * 60)        # Friday 22:00 to Saturday 05:00
    s = Schedule(Path("day"), [morning, night])
    at = lambda day, h, m, sec=0: MONDAY + timedelta(days=day, hours=h, minutes=m, seconds=sec)  # noqa: E731
    assert s.plan_at(at(0, 5, 59, 59)) == Path("day")
    assert s.plan_at(at(0, 6, 0)) == Path("morning")
    assert s.plan_at(at(0, 12, 29, 59)) == Path("morning")
    assert s.plan_at(at(0, 12, 30)) == Path("day")
    assert s.plan_at(at(6, 7, 0)) == Path("day")                  # Sunday: not a morning day
    assert s.plan_at(at(4, 23, 0)) == Path("night")
    assert s.plan_at(at(5, 4, 59)) == Path("night")               # past midnight, into Saturday
    assert s.plan_at(at(5, 5, 0)) == Path("day")
    assert s.plan_at(at(5, 6, 0)) == Path("morning")
    assert s.plan_at(at(3, 23, 0)) == Path("day")                 # Thursday night: not a night day
    assert s.next_change(at(0, 5, 0)) == (at(0, 6, 0), morning)
    assert s.next_change(at(0, 7, 0)) == (at(0, 12, 30), None)
    assert s.next_change(at(4, 13, 0)) == (at(4, 22, 0), night)
    assert s.next_change(at(6, 13, 0)) == (at(7, 6, 0), morning)  # Sunday: next is Monday morning


def test_a_day_to_midnight():
    whole = Slot(1, Path("sunday"), frozenset({6}), 0, 24 * 60)
    s = Schedule(Path("day"), [whole])
    assert s.plan_at(MONDAY + timedelta(days=6, hours=23, minutes=59)) == Path("sunday")
    assert s.plan_at(MONDAY + timedelta(days=7)) == Path("day")


# -- the line config's checks --------------------------------------------------------------------------
def line_with(folder, schedule_text: str, morning_plan: str | None = None):
    config = write(folder, LINE + schedule_text, PLAN)
    (folder / "morning.plan.toml").write_text(morning_plan or PLAN.replace('version = "t1"', 'version = "m1"'))
    return config


def errors_of(folder, schedule_text, morning_plan=None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(line_with(folder, schedule_text, morning_plan))
    return caught.value.errors


def test_a_valid_schedule_loads(tmp_path):
    config = load_config(line_with(tmp_path, entry() + entry(days='["sun"]', start="22:00", end="02:00")))
    s = Schedule.from_config(config)
    assert [slot.file.name for slot in s.slots] == ["morning.plan.toml"] * 2
    assert s.slots[1].days == frozenset({6}) and (s.slots[1].from_min, s.slots[1].until_min) == (22 * 60, 120)


def _line_of(config: Path, text: str) -> int:
    return next(n for n, line in enumerate(config.read_text().splitlines(), start=1) if text in line)


def test_every_mistake_in_an_entry_names_its_line_key_value_and_fix(tmp_path):
    schedule = entry(days='["mon", "tux"]', start="6 am", end="25:00") + entry(file="missing.plan.toml",
                                                                             days='["sun"]', start="06:00",
                                                                             end="06:00")
    errors = errors_of(tmp_path, schedule)
    config = tmp_path / "line.toml"
    assert len(errors) == 5, errors
    assert errors[0] == (f'{config}:{_line_of(config, "tux")}: [plan] schedule #1 days = ["mon", "tux"]: \'tux\' is '
                         'not a day. Write the days it applies as ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], '
                         'each once')
    assert errors[1].startswith(f'{config}:{_line_of(config, "6 am")}: [plan] schedule #1 from = "6 am": not a time '
                                'of day. Write the time it starts as "HH:MM"')
    assert errors[2].startswith(f'{config}:{_line_of(config, "25:00")}: [plan] schedule #1 until = "25:00": not a '
                                'time of day')
    assert errors[3].startswith(f'{config}:{_line_of(config, "missing.plan")}: [plan] schedule #2 file = '
                                f'"missing.plan.toml": this plan is refused: {tmp_path / "missing.plan.toml"}: the '
                                'plan file does not exist')
    assert "[plan] schedule #2 until = \"06:00\": the same as from (06:00): the entry would never end" in errors[4]


def test_overlapping_entries_are_refused_where_the_second_starts(tmp_path):
    errors = errors_of(tmp_path, entry() + entry(days='["sun"]', start="22:00", end="07:00"))
    config = tmp_path / "line.toml"
    assert errors == [f'{config}:{_line_of(config, "22:00")}: [plan] schedule #2 from = "22:00": overlaps [plan] '
                      'schedule #1 (both apply on mon at 06:00). Let one end where the other starts: at any time one '
                      'plan only is in force']


def test_a_scheduled_plan_that_does_not_fit_the_line_is_refused_with_its_own_error(tmp_path):
    broken = PLAN.replace('version = "t1"', 'version = "m1"').replace("no_rule = ", "no_rule = 9 #")
    errors = errors_of(tmp_path, entry(), broken)
    assert len(errors) == 1 and "[plan] schedule #1 file = \"morning.plan.toml\": this plan is refused: " in errors[0]
    assert "morning.plan.toml:" in errors[0].split("this plan is refused: ")[1], errors[0]


def test_check_config_builds_every_scheduled_plan_whole_and_lists_it(tmp_path, capfd):
    from edge import check_config
    morning = PLAN.replace('version = "t1"', 'version = "m1"') + '\n[preadvice]\nfiles = ["morning.csv"]\n'
    config = line_with(tmp_path, entry(), morning)
    (tmp_path / "morning.csv").write_text("waybill,destination\nSF1234567890123,Qicun\n")
    assert check_config.main([str(config)]) == 0
    assert "  schedule  #1 mon, tue, wed, thu, fri, sat 06:00-12:30: morning.plan.toml, plan m1 " in \
        capfd.readouterr().out
    # A pre-advice mistake shows only when the plan is built whole: at check-config, not at its time.
    (tmp_path / "morning.csv").write_text("waybill,destination\nSF1234567890123,Nowhere\n")
    done = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{tmp_path / 'morning.csv'}:2: no destination 'Nowhere' in the plan" in done.stderr


def test_the_shipped_configs_have_no_schedule_and_still_pass():
    for path in sorted((REPO / "configs").glob("*.toml")):
        assert load_config(path)["plan"]["schedule"] == []


# -- the switch on a running line ------------------------------------------------------------------------
class Clock:
    """The schedule's wall clock: real seconds pass, from a time the test sets."""

    def __init__(self, start: datetime):
        self.set(start)

    def set(self, when: datetime) -> None:
        self._base, self._mono = when, time.monotonic()

    def __call__(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._mono)


def shift_config(folder: Path, morning_text: str) -> Path:
    plan = REPO / "configs" / "plans" / "county-24.plan.toml"
    shutil_copy = (REPO / "configs" / "plans" / "county-24.preadvice.csv").read_text()
    (folder / "county-24.preadvice.csv").write_text(shutil_copy)
    (folder / "day.plan.toml").write_text(plan.read_text())
    (folder / "morning.plan.toml").write_text(morning_text)
    config = private_copy(REPO / "configs" / "county-24.toml", folder, plan_path=folder / "day.plan.toml",
                          watch="false")
    config.write_text(config.read_text() + entry(file=str(folder / "morning.plan.toml"), days='["mon"]'))
    return config


def morning_plan() -> str:
    """The day plan with another version and Qicun moved from chute 7 to chute 8."""
    text = (REPO / "configs" / "plans" / "county-24.plan.toml").read_text()
    moved = text.replace('version = "2026-11-28.1"', 'version = "morning-1"').replace(
        '[destinations."Qicun"]\nchutes = [7]', '[destinations."Qicun"]\nchutes = [8]')
    assert moved.count("morning-1") == 1 and "chutes = [8]\n" in moved
    return moved


async def run_with_schedule(config_path: Path, clock: Clock, parcels: int, during) -> tuple:
    """A shift with the simulated PLC in its own process and the controller here, on `clock`."""
    config = load_config(config_path)
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(config_path), "--parcels", str(parcels),
        "--rate", "12000", "--seed", "7", "--no-realtime", "--label-cache", str(config_path.parent / "labels"),
        cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    controller = build_controller(config, plan_clock=clock)
    stop = asyncio.Event()
    run = asyncio.create_task(controller.run(stop))
    side = asyncio.create_task(during(controller))
    try:
        _, err = await asyncio.wait_for(sim.communicate(), 200)
        assert sim.returncode == 0, err.decode()[-3000:]
        result = await asyncio.wait_for(side, 30)
    finally:
        if not side.done():
            side.cancel()
        stop.set()
        await asyncio.wait_for(run, 20)
        controller.records.close()
        if sim.returncode is None:
            sim.kill()
            await sim.wait()
    return controller, result


def records_of(controller) -> tuple[list, list]:
    db = sqlite3.connect(controller.records.path)
    try:
        parcels = db.execute("SELECT id, plan_version FROM parcels WHERE plan_version != '' ORDER BY id").fetchall()
        acts = db.execute("SELECT who, action, detail FROM actions ORDER BY id").fetchall()
    finally:
        db.close()
    return parcels, acts


async def _until(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.timeout(300)
async def test_the_controller_switches_to_the_scheduled_plan_between_two_parcels(tmp_path):
    config = shift_config(tmp_path, morning_plan())
    clock = Clock(MONDAY + timedelta(hours=5))

    async def during(c):
        await _until(lambda: c.stats.decided >= 30, 120)
        assert c.plan.version == "2026-11-28.1"
        assert c.snapshot()["plan_schedule"]["next_at"] == "2026-12-07T06:00"
        clock.set(MONDAY + timedelta(hours=5, minutes=59, seconds=58.5))      # the switch 1.5 s ahead
        decided_before = c.stats.decided
        await _until(lambda: c.plan.version == "morning-1", 10)
        switched_at = clock()
        return decided_before, switched_at, c.snapshot()

    controller, (decided_before, switched_at, snapshot) = await run_with_schedule(config, clock, 160, during)
    # Not before its time; after it, as long as the plan takes to build beside the parcels (a second
    # on an idle PC, more on a loaded one).
    assert MONDAY + timedelta(hours=6) <= switched_at < MONDAY + timedelta(hours=6, seconds=10)
    assert snapshot["plan_version"] == "morning-1" and snapshot["plan_refused"] is None
    assert snapshot["plan_schedule"]["file"].endswith("morning.plan.toml")
    assert snapshot["plan_schedule"]["next_at"] == "2026-12-07T12:30"
    parcels, acts = records_of(controller)
    versions = [v for _, v in parcels]
    first_morning = versions.index("morning-1")
    # One switch, between two parcels: every parcel before it by the day plan, every one after by the morning's.
    assert set(versions[:first_morning]) == {"2026-11-28.1"} and set(versions[first_morning:]) == {"morning-1"}
    assert first_morning >= decided_before and len(versions) - first_morning > 50
    assert ("plan schedule: [plan] schedule #1 (mon 06:00-12:30)", "reload plan", "morning-1") in acts
    # Both plans' records check out with `sortline replay`'s core: the plans decided what the records say.
    cfg = load_config(config)
    used = load_deciders([cfg.plan_path, tmp_path / "morning.plan.toml"], 24)
    checked = replay(load_parcels(controller.records.path, 0, time.time() + 60), used)
    assert checked.check["differs"] == 0 and not checked.missing_plans
    assert checked.by_plan == {"2026-11-28.1": first_morning, "morning-1": len(versions) - first_morning}


@pytest.mark.timeout(300)
async def test_a_scheduled_plan_that_fails_is_refused_with_an_alarm_and_loaded_once_corrected(tmp_path):
    good = morning_plan()
    config = shift_config(tmp_path, good)
    clock = Clock(MONDAY + timedelta(hours=5))
    morning = tmp_path / "morning.plan.toml"

    async def during(c):
        await _until(lambda: c.stats.decided >= 20, 120)
        # Broken after the config was checked: a chute the line does not have.
        morning.write_text(good.replace("chutes = [8]\n", "chutes = [99]\n", 1))
        clock.set(MONDAY + timedelta(hours=5, minutes=59, seconds=59))
        await _until(lambda: c.alarms.is_active("plan_schedule_refused"), 15)
        refused = (c.plan.version, c.snapshot(), c.stats.decided)
        await _until(lambda: c.stats.decided >= refused[2] + 20, 60)      # parcels go on with the day plan
        still = c.plan.version
        morning.write_text(good)
        await _until(lambda: c.plan.version == "morning-1", 15)
        return refused, still, c.alarms.is_active("plan_schedule_refused")

    controller, (refused, still, alarm_after) = await run_with_schedule(config, clock, 160, during)
    version, snapshot, _ = refused
    assert version == "2026-11-28.1" and still == "2026-11-28.1"
    alarm = next(a for a in snapshot["alarms"] if a["key"] == "plan_schedule_refused")
    assert "morning.plan.toml due now by [plan] schedule #1 (mon 06:00-12:30) was refused, plan 2026-11-28.1 " \
           "stays active" in alarm["cause"] and "99" in alarm["cause"]
    assert "correct morning.plan.toml" in alarm["remedy"]
    assert snapshot["plan_refused"] and snapshot["plan_schedule"]["refused"].endswith("morning.plan.toml")
    assert not alarm_after
    parcels, acts = records_of(controller)
    assert any(a == "reload plan refused" and who.startswith("plan schedule") for who, a, _ in acts)
    versions = [v for _, v in parcels]
    assert versions[-1] == "morning-1" and versions.count("2026-11-28.1") >= 40
    print(json.dumps({"parcels": len(versions), "day": versions.count("2026-11-28.1")}))
