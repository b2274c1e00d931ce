"""Reloading the sort plan and its pre-advice without stopping the line.

Three triggers, one path: the plan file or one of its pre-advice files changes on disk (polled
by modification time: no extra dependency, works on every filesystem), `sortline reload` asks
over the control socket in the records folder and prints the answer, or the process receives
SIGHUP (`systemctl reload`). Each runs Controller.reload_plan: the plan is built and checked
against this line in a worker thread and swapped in between two parcels; a plan that fails is
refused, the active one stays, and the refusal is logged, recorded and shown on the screen.
"""
import argparse
import asyncio
import hashlib
import json
import logging
import os
import re
import signal
import socket
import sys
import time
import tomllib
from pathlib import Path

from drivers.timed_awaits import bounded, cancel_and_wait

log = logging.getLogger("sortline.reload")

SOCKET_NAME = "control.sock"
SOCKET_PATH_MAX = 107            # sun_path holds 108 bytes with the terminating zero
REQUEST_TIMEOUT_S = 5.0


def build_line_plan(config, path, load=None):
    """Load a plan file with its pre-advice and check that it fits this line; raises PlanError.

    `load(path, n_chutes)` builds the plan: load_plan (in this process) unless given; a reload
    gives the router's off-loop loader, since it may take seconds for millions of pre-advice
    records.
    """
    from fastpath import PlanError, load_plan

    from .config import MISSING
    from .line_checks import fit_problems
    plan = (load or load_plan)(path, len(config.geometry.chutes))
    problems = fit_problems(path, plan.special, config.geometry, str(config.path))
    if problems:
        p = problems[0]
        raise PlanError(p.problem, file=p.file, line=p.line, key=p.key,
                        value=None if p.value is MISSING else p.value, remedy=p.remedy)
    return plan


async def reload_plan(controller, path=None, who: str = "technician") -> str:
    """Controller.reload_plan: build and check off the loop, swap between two parcels, or refuse.

    Raises PlanError or TimeoutError (or, for a fault of the build itself, what it raised) after
    setting `controller.plan_refused`.
    """
    return (await reload_timed(controller, path, who))["active"]


async def reload_timed(controller, path=None, who: str = "technician") -> dict:
    """reload_plan, and how long it took: the build beside the parcels, and the swap on the loop.

    Everything that costs time (plan, pre-advice table) is built in the worker thread; the loop
    only swaps it in (Controller.use_plan). `swap_ms` is the loop's CPU time for that (other
    processes on the PC do not count in it).
    """
    from fastpath import PlanError
    config = controller.config
    path = path or plan_in_force(controller)

    def build(load):
        return build_line_plan(config, path, load)
    timeout_s = config["plan"]["reload_timeout_s"]
    started_mono = time.monotonic()
    try:
        plan = await controller.router.build_and_swap(build, timeout_s=timeout_s)
    except (PlanError, asyncio.TimeoutError) as exc:
        why = str(exc) if isinstance(exc, PlanError) else f"building it took longer than {timeout_s:g} s"
        controller.refuse_plan(path, who, why)
        raise
    except Exception as exc:             # a fault of the build itself: refused as visibly, with the trace in the log
        controller.refuse_plan(path, who, f"the plan could not be built ({exc}); the log has the details")
        log.exception("plan build failed")
        raise
    swap_cpu_ns = time.thread_time_ns()
    build_s = time.monotonic() - started_mono
    controller.use_plan(plan, who)
    swap_ms = (time.thread_time_ns() - swap_cpu_ns) / 1e6
    log.info("%s loaded plan %s: built in %.2f s beside the parcels, swapped in %.2f ms", who, plan.version,
             build_s, swap_ms)
    return {"active": plan.version, "build_s": round(build_s, 3), "swap_ms": round(swap_ms, 3)}


def plan_in_force(controller) -> Path:
    """The plan file a reload loads: the one the line's plan schedule names for now, else [plan] file."""
    runner = getattr(controller, "plan_schedule", None)
    return runner.path_now() if runner is not None else controller.config.plan_path


def socket_path(config) -> Path:
    return config.records_folder / SOCKET_NAME


_PREADVICE_HEADER = re.compile(rb"[ \t]*\[[ \t]*preadvice[ \t]*\]")
_NEXT_HEADER = re.compile(rb"(?m)^[ \t]*\[")


def _plan_bytes(plan_path: Path) -> bytes | None:
    """The plan file as the reload will read it; None when it would refuse it (the reload says why)."""
    from fastpath import text_files
    try:
        return text_files.read_bytes(plan_path, text_files.PLAN)
    except (OSError, text_files.FileRefused):
        return None


def preadvice_files(plan_path: Path, data: bytes | None = None) -> list[Path]:
    """The pre-advice files a plan names, from its [preadvice] section alone (`data`: the plan
    file's bytes, when they have been read already).

    Only that section is parsed, found by a plain byte search: a whole plan can take seconds
    to parse. A plan that cannot be read is refused by the reload itself, with the reason; here
    it only means there is nothing more to watch.
    """
    from fastpath import text_files
    if data is None:
        data = _plan_bytes(plan_path)
    data = text_files.skip_bom(data or b"")
    header = _preadvice_header(data)
    if header is None:
        return []
    end = _NEXT_HEADER.search(data, header.end())
    try:
        text = data[header.start():end.start() if end else len(data)].decode("utf-8")
        section = tomllib.loads(text)["preadvice"]
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError):
        return []
    names = section.get("files", []) if isinstance(section, dict) else []
    return [plan_path.parent / n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _preadvice_header(data: bytes):
    """The match of the [preadvice] header at the start of a line, or None."""
    at = data.find(b"preadvice")
    while at >= 0:
        line_start = data.rfind(b"\n", 0, at) + 1
        found = _PREADVICE_HEADER.match(data, line_start)
        if found and found.end() > at:
            return found
        at = data.find(b"preadvice", at + 1)
    return None


def _stat(path: Path) -> tuple:
    try:
        st = os.stat(path)
        return str(path), st.st_mtime_ns, st.st_size, st.st_ino
    except OSError:
        return str(path), None, None, None


RACY_S = 2.0                     # a file written this recently may change again within one clock tick


class WatchedFiles:
    """The plan file and its pre-advice files, and what tells that one of them changed.

    Pre-advice files can hold millions of records: for them the modification time, size and
    inode tell. The plan file is small, and a technician may save it twice within one tick of
    the filesystem clock with the same length ("t1" -> "t2"): while its modification time is
    that recent, its content is compared too (as git does for "racily clean" files). A plan
    file that the reload would refuse (a named pipe, a folder, too big) is never read here.

    signature() reads files: it runs in a worker thread, never on the event loop.
    """

    def __init__(self, plan_path):
        self.plan_path = Path(plan_path)
        self._plan_stat = None
        self._plan_digest = None
        self._preadvice: list[Path] = []

    def signature(self) -> tuple:
        plan_stat = _stat(self.plan_path)
        racy = plan_stat[1] is None or time.time_ns() - plan_stat[1] < RACY_S * 1e9
        data = None
        if racy or plan_stat != self._plan_stat:
            data = _plan_bytes(self.plan_path)
            digest = None if data is None else hashlib.blake2b(data, digest_size=16).hexdigest()
        else:
            digest = self._plan_digest
        if plan_stat != self._plan_stat or digest != self._plan_digest:   # it may name other files now
            self._plan_stat, self._plan_digest = plan_stat, digest
            self._preadvice = preadvice_files(self.plan_path, data or b"")
        return (plan_stat + (digest,),) + tuple(_stat(f) for f in self._preadvice)


class ReloadTriggers:
    """The three ways a reload is asked for, started and stopped with the controller."""

    def __init__(self, controller):
        self.controller = controller
        self.config = controller.config
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._server: asyncio.AbstractServer | None = None
        self._socket: Path | None = None
        self._signal = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._spawn, "signal SIGHUP")
            self._signal = True
        except (RuntimeError, ValueError) as exc:       # not the main thread of the process
            log.warning("SIGHUP will not reload the plan here (%s); use `sortline reload` or edit the file", exc)
        await self._serve()
        self._start_schedule()
        if self.config["plan"]["watch"]:
            files = WatchedFiles(self.controller.plan.path)
            loaded = await asyncio.to_thread(files.signature)
            # The plan was loaded before the controller was made: a file written since then is news.
            started_ns = getattr(self.controller, "started_wall", float("inf")) * 1e9
            if any(mtime is not None and mtime > started_ns for _, mtime, *_ in loaded):
                loaded = ()
            self._keep(asyncio.create_task(self._watch(files, loaded), name="plan-watch"))

    async def stop(self) -> None:
        if self._signal:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._signal = False
        await cancel_and_wait(list(self._tasks), REQUEST_TIMEOUT_S)
        if self._server is not None:
            self._server.close()
            try:
                await bounded(self._server.wait_closed(), REQUEST_TIMEOUT_S)
            except asyncio.TimeoutError:
                log.warning("the control socket did not close within %.0f s", REQUEST_TIMEOUT_S)
            self._server = None
        if self._socket is not None:
            self._socket.unlink(missing_ok=True)
            self._socket = None

    async def reload(self, who: str, path: Path | None = None) -> dict:
        """One reload at a time; the answer says what is active now and why."""
        c = self.controller
        async with self._lock:
            previous = c.plan.version
            try:
                done = await reload_timed(c, path, who=who)
            except Exception:            # refused, recorded and logged by reload_timed, whatever the cause
                return {"ok": False, "active": c.plan.version, "message": c.plan_refused}
            return {"ok": True, "previous": previous, **done}

    def _start_schedule(self) -> None:
        """The line config's [[plan.schedule]]: a fourth trigger, the clock."""
        from .plan_schedule import Schedule, ScheduleRunner
        schedule = Schedule.from_config(self.config)
        if not schedule.slots:
            return
        c = self.controller
        runner = ScheduleRunner(c, schedule, self.reload, lambda path: WatchedFiles(path).signature(),
                                getattr(c, "plan_clock", None))
        c.plan_schedule = runner
        self._keep(asyncio.create_task(runner.run(), name="plan-schedule"))

    # -- the triggers -----------------------------------------------------------------------------
    def _keep(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn(self, who: str) -> None:
        self._keep(asyncio.create_task(self._logged(who)))

    async def _logged(self, who: str) -> None:
        try:
            await self.reload(who)
        except Exception:                # a reload must never take the line down with it
            log.exception("plan reload asked by %s failed unexpectedly; the active plan stays", who)

    async def _watch(self, files: WatchedFiles, loaded: tuple) -> None:
        """Reload once the files changed and then stayed the same for one interval (editors write in steps)."""
        interval_s = self.config["plan"]["watch_interval_ms"] / 1000
        seen = loaded
        while True:
            await asyncio.sleep(interval_s)
            if Path(self.controller.plan.path) != files.plan_path:
                # The schedule put another plan file in force: watch that one from now on.
                files = WatchedFiles(self.controller.plan.path)
                loaded = seen = await asyncio.to_thread(files.signature)
                continue
            now = await asyncio.to_thread(files.signature)
            if now == loaded or now != seen:
                seen = now
                continue
            changed = sorted({entry[0] for entry in set(now) - set(loaded)})
            loaded = now
            log.info("plan files changed on disk (%s): reloading", ", ".join(changed))
            await self._logged("file change")

    async def _serve(self) -> None:
        path = socket_path(self.config)
        if len(os.fsencode(path)) > SOCKET_PATH_MAX:
            log.error("control socket path %s is longer than %d bytes: `sortline reload` cannot reach this "
                      "controller; use SIGHUP or a shorter records folder", path, SOCKET_PATH_MAX)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            if await _answers(path):
                log.error("another controller answers on %s: two controllers share this records folder; "
                          "`sortline reload` reaches the other one", path)
                return
            path.unlink()                # left behind by a controller that was killed
        self._server = await asyncio.start_unix_server(self._handle, path=str(path))
        os.chmod(path, 0o660)
        self._socket = path

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await bounded(reader.readline(), REQUEST_TIMEOUT_S)).decode("ascii", "replace").strip()
            if request == "reload":
                answer = await self.reload("technician (sortline reload)")
            elif request == "status":
                c = self.controller
                runner = getattr(c, "plan_schedule", None)
                answer = {"ok": True, "active": c.plan.version, "refused": c.plan_refused,
                          "schedule": runner.status() if runner is not None else None}
            else:
                answer = {"ok": False, "message": f"unknown request {request!r}: send reload or status"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await bounded(writer.drain(), REQUEST_TIMEOUT_S)
        except (asyncio.TimeoutError, ConnectionError) as exc:
            log.warning("control socket request dropped: %s", exc or type(exc).__name__)
        finally:
            writer.close()


async def _answers(path: Path) -> bool:
    try:
        _, writer = await bounded(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


# -- `sortline reload` ------------------------------------------------------------------------------
def ask(path: Path, request: str, timeout_s: float) -> dict:
    """Send one request to a running controller; raises OSError when none answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(path))
        s.sendall(request.encode("ascii") + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise ConnectionError("the controller closed the connection without an answer")
    return json.loads(data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="sortline reload",
        description="Check the sort plan of a line, then make the running controller load it between two "
                    "parcels. The answer says which plan is active. Exit status 0: loaded; 1: refused (the "
                    "active plan stays); 2: no controller answered.")
    parser.add_argument("--config", default="configs/county-24.toml", help="the line config file (TOML)")
    parser.add_argument("--status", action="store_true", help="only show the active plan and the last refusal")
    args = parser.parse_args(argv)
    from .config_problems import print_errors
    from .config import ConfigError, load_config
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print_errors(args.config, exc.problems)
        print("nothing was sent to the line: the active plan stays", file=sys.stderr)
        return 1
    path = socket_path(config)
    timeout_s = config["plan"]["reload_timeout_s"] + 2 * REQUEST_TIMEOUT_S
    try:
        answer = ask(path, "status" if args.status else "reload", timeout_s)
    except (OSError, ValueError) as exc:
        print(f"no controller answered on {path} ({exc}): is `sortline run --config {args.config}` running "
              "on this PC?", file=sys.stderr)
        return 2
    if args.status:
        print(f"active plan {answer['active']}")
        if answer.get("refused"):
            print(f"last refusal: {answer['refused']}")
        schedule = answer.get("schedule")
        if schedule:
            print(f"in force by the plan schedule: {schedule['file']} ({schedule['entry']})")
            if schedule.get("next_at"):
                print(f"next: {schedule['next_file']} from {schedule['next_at']}")
        return 0
    if answer["ok"]:
        print(f"plan {answer['active']} is active (was {answer['previous']}): built in {answer['build_s']:.2f} s "
              f"beside the parcels, swapped in {answer['swap_ms']:.2f} ms")
        return 0
    print(answer.get("message") or "the plan was refused", file=sys.stderr)
    return 1
