"""Plan schedules: other sort plans at set times of the week, the line's own plan the rest of the time.

    [plan]
    file = "plans/county-24.plan.toml"          # in force whenever no schedule entry is

    [[plan.schedule]]                           # morning delivery runs
    file = "plans/morning.plan.toml"
    days = ["mon", "tue", "wed", "thu", "fri", "sat"]
    from = "06:00"
    until = "12:30"

An entry is in force on its days from `from` until `until` (local time of the line PC); an entry
whose `until` is earlier than its `from` runs past midnight into the next day. Entries may not
overlap, so that at any minute of the week one plan, and only one, is the one to use.

The controller switches plans the way a reload does (edge/reload.py): the scheduled plan is
built and checked beside the parcels and swapped in between two of them; a plan that fails is
refused with an alarm and the active plan stays, until the file changes or the next entry starts.
"""
import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Awaitable, Callable

log = logging.getLogger("sortline.schedule")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_A_DAY = 24 * 60
MINUTES_A_WEEK = 7 * MINUTES_A_DAY
TICK_S = 0.25                   # how often the clock is looked at: a switch comes at most this late
RETRY_LOOK_S = 1.0              # how often a refused plan's file is looked at for a change
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Slot:
    """One schedule entry, checked: weekdays 0 (Monday) to 6, minutes since midnight."""
    index: int                   # 1-based, as `[plan] schedule #N` in messages
    file: Path
    days: frozenset
    from_min: int
    until_min: int               # 1440 for "24:00"

    def covers(self, when: datetime) -> bool:
        minute, day = when.hour * 60 + when.minute, when.weekday()
        if self.from_min < self.until_min:
            return day in self.days and self.from_min <= minute < self.until_min
        return (day in self.days and minute >= self.from_min) or ((day - 1) % 7 in self.days and
                                                                  minute < self.until_min)

    def week_spans(self) -> list[tuple[int, int]]:
        """[start, end) minutes of the week; a span past Sunday midnight is split in two."""
        spans = []
        for day in sorted(self.days):
            start = day * MINUTES_A_DAY + self.from_min
            end = day * MINUTES_A_DAY + self.until_min + (0 if self.from_min < self.until_min else MINUTES_A_DAY)
            if end > MINUTES_A_WEEK:
                spans += [(start, MINUTES_A_WEEK), (0, end - MINUTES_A_WEEK)]
            else:
                spans.append((start, end))
        return spans

    def when(self) -> str:
        return f"{days_text(self.days)} {_hhmm(self.from_min)}-{_hhmm(self.until_min)}"

    def label(self) -> str:
        return f"[plan] schedule #{self.index} ({self.when()})"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def days_text(days) -> str:
    return ", ".join(DAYS[d] for d in sorted(days)) if len(days) < 7 else "every day"


def parse_time(text: str, allow_24: bool) -> int | None:
    """Minutes since midnight of "HH:MM", or None."""
    found = _TIME.match(text.strip())
    if not found:
        return None
    hours, minutes = int(found.group(1)), int(found.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        return None
    return hours * 60 + minutes


class Schedule:
    """The line's plan and its scheduled plans: which file is in force when, and when that changes."""

    def __init__(self, default: Path, slots: list[Slot]):
        self.default = Path(default)
        self.slots = list(slots)

    @classmethod
    def from_config(cls, config) -> "Schedule":
        slots = []
        for index, entry in enumerate(config["plan"]["schedule"], start=1):
            start, end = parse_time(entry["from"], False), parse_time(entry["until"], True)
            assert start is not None and end is not None, "a checked config has times"
            slots.append(Slot(index, config.resolve(entry["file"]), frozenset(DAYS.index(d) for d in entry["days"]),
                              start, end))
        return cls(config.plan_path, slots)

    def slot_at(self, when: datetime) -> Slot | None:
        return next((s for s in self.slots if s.covers(when)), None)

    def plan_at(self, when: datetime) -> Path:
        slot = self.slot_at(when)
        return slot.file if slot else self.default

    def next_change(self, when: datetime) -> tuple[datetime, Slot | None] | None:
        """When the slot in force changes next after `when` (within a week), and the one that starts."""
        if not self.slots:
            return None
        now = self.slot_at(when)
        midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
        edges = sorted({midnight + timedelta(days=day, minutes=m)
                        for day in range(9) for s in self.slots for m in (s.from_min, s.until_min)})
        for edge in edges:
            if edge > when and self.slot_at(edge) != now:
                return edge, self.slot_at(edge)
        return None


def schedule_files(config) -> list[Path]:
    """The plan files of a line config's schedule, in the order written."""
    return [config.resolve(entry["file"]) for entry in config["plan"]["schedule"]]


# -- checks of the line config ------------------------------------------------------------------------
CHECK_TEXT = ("Each [[plan.schedule]] entry names days from mon..sun, `from` and `until` as \"HH:MM\" (until may be "
              "\"24:00\"; earlier than from runs past midnight), a plan file that is valid for this line as "
              "[plan] file is; two entries never overlap.")


def check_schedule(d, geometry, plan_problems) -> None:
    """Add a problem to the draft `d` (edge/config_problems.Draft) for every mistake in [plan] schedule;
    `plan_problems(path, geometry, config_file)` checks one plan file as [plan] file is checked."""
    if not d.ok(("plan", "schedule")):
        return
    slots = []
    for i, entry in enumerate(d.values["plan"]["schedule"]):
        def where(name, i=i):
            return d.at.entry("plan", "schedule", i, name), f"[plan] schedule #{i + 1} {name}", \
                d.given("plan", "schedule", i, name)
        ok = True
        days = entry["days"]
        bad = [day for day in days if day not in DAYS]
        if bad or not days or len(set(days)) != len(days):
            ok = False
            why = (f"{bad[0]!r} is not a day" if bad else "no days" if not days else "a day is named twice")
            d.add(*where("days"), why, 'Write the days it applies as ["mon", "tue", "wed", "thu", "fri", "sat", '
                  '"sun"], each once')
        start = parse_time(entry["from"], False)
        if start is None:
            ok = False
            d.add(*where("from"), "not a time of day", 'Write the time it starts as "HH:MM", 24-hour clock, '
                  'e.g. "06:00" or "13:30"')
        end = parse_time(entry["until"], True)
        if end is None:
            ok = False
            d.add(*where("until"), "not a time of day", 'Write the time it ends as "HH:MM", 24-hour clock, '
                  'e.g. "12:30"; "24:00" is midnight at the end of the day')
        elif start is not None and end % MINUTES_A_DAY == start:
            ok = False
            d.add(*where("until"), f"the same as from ({entry['from']}): the entry would never end",
                  'Give the time it ends; for a whole day write from = "00:00", until = "24:00"')
        path = d.resolve(entry["file"])
        for problem in plan_problems(path, geometry, d.file):
            ok = False
            d.add(*where("file"), f"this plan is refused: {problem}",
                  "Correct that plan file (or name another one): the line would keep its active plan at that time")
        if ok and start is not None and end is not None:
            slots.append(Slot(i + 1, path, frozenset(DAYS.index(day) for day in days), start, end))
    _overlaps(d, slots)


def _overlaps(d, slots: list[Slot]) -> None:
    for n, a in enumerate(slots):
        for b in slots[n + 1:]:
            both = [(max(s, t), min(e, f)) for s, e in a.week_spans() for t, f in b.week_spans() if max(s, t) < min(e, f)]
            if not both:
                continue
            start = both[0][0]
            day, minute = divmod(start, MINUTES_A_DAY)
            d.add(d.at.entry("plan", "schedule", b.index - 1, "from"), f"[plan] schedule #{b.index} from",
                  d.given("plan", "schedule", b.index - 1, "from"),
                  f"overlaps [plan] schedule #{a.index} (both apply on {DAYS[day]} at {_hhmm(minute)})",
                  "Let one end where the other starts: at any time one plan only is in force")


# -- the controller's side ------------------------------------------------------------------------------
class ScheduleRunner:
    """Puts the scheduled plan in force at its time, through the reload path (one reload at a time).

    `clock()` gives the line PC's local wall time (datetime.now by default; tests give another).
    `reload(who, path)` is ReloadTriggers.reload: it returns {"ok": ...} and never raises.
    `signature(path)` tells a plan file and its pre-advice files apart from an edited version
    (reload.WatchedFiles); it reads files, so it runs in a worker thread.
    """

    def __init__(self, controller, schedule: Schedule, reload: Callable[[str, Path], Awaitable[dict]],
                 signature: Callable[[Path], tuple], clock: Callable[[], datetime] | None = None):
        self.controller = controller
        self.schedule = schedule
        self.clock = clock or datetime.now
        self._reload = reload
        self._signature = signature
        self.in_force = controller.plan.path and Path(controller.plan.path)   # the file the schedule last put live
        self.refused: Path | None = None
        self._refused_signature: tuple | None = None
        self._looked_mono = 0.0

    def path_now(self) -> Path:
        return self.schedule.plan_at(self.clock())

    def status(self) -> dict:
        now = self.clock()
        slot = self.schedule.slot_at(now)
        following = self.schedule.next_change(now)
        return {"file": str(self.schedule.plan_at(now)), "entry": slot.label() if slot else "[plan] file",
                "next_at": following[0].isoformat(timespec="minutes") if following else None,
                "next_file": str(following[1].file if following[1] else self.schedule.default) if following else None,
                "refused": str(self.refused) if self.refused else None}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = self.clock()
            want = self.schedule.plan_at(now)
            if want != self.in_force:
                if want != self.refused:
                    await self._switch(want, self.schedule.slot_at(now))
                elif loop.time() - self._looked_mono >= RETRY_LOOK_S:
                    self._looked_mono = loop.time()
                    if await asyncio.to_thread(self._signature, want) != self._refused_signature:
                        await self._switch(want, self.schedule.slot_at(now))
            await asyncio.sleep(TICK_S)

    async def _switch(self, path: Path, slot: Slot | None) -> None:
        c = self.controller
        what = slot.label() if slot else "[plan] file (no schedule entry in force)"
        who = f"plan schedule: {what}"
        log.info("%s: plan %s is due at %s", who, path, self.clock().strftime("%a %H:%M:%S"))
        answer = await self._reload(who, path)
        if answer["ok"]:
            self.in_force, self.refused = path, None
            c.alarms.clear("plan_schedule_refused")
            return
        self.refused = path
        self._refused_signature = await asyncio.to_thread(self._signature, path)
        self._looked_mono = asyncio.get_running_loop().time()
        c.alarms.raise_("plan_schedule_refused",
                        f"the plan {path} due now by {what} was refused, plan {c.plan.version} stays active: "
                        f"{answer.get('message') or 'see the log'}",
                        f"correct {path.name} (sortline check-config names what is wrong) and save it: it is "
                        "loaded as soon as it passes; the line sorts with the active plan meanwhile")
