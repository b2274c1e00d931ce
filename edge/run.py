"""Wiring: from a checked line config to a running controller (`sortline run`)."""
import argparse
import asyncio
import logging
import signal
import sys

from drivers import LinkSettings, open_link
from drivers.link import OpcUaSettings
from drivers.regmap import RegisterMap
from drivers.rings import REUSE_AFTER_S

log = logging.getLogger("sortline.edge")


def link_settings(config) -> LinkSettings:
    plc = config["plc"]

    def path(key):
        return str(config.resolve(plc[key])) if plc[key] else ""
    opcua = OpcUaSettings(path=plc["opcua_path"], namespace=plc["opcua_namespace"], security=plc["opcua_security"],
                          certificate=path("opcua_certificate"), private_key=path("opcua_private_key"),
                          server_certificate=path("opcua_server_certificate"), auth=plc["opcua_auth"],
                          username=plc["opcua_username"], password=plc["opcua_password"],
                          password_file=path("opcua_password_file"))
    return LinkSettings(host=plc["host"], port=plc["port"], unit=plc["unit"],
                        poll_interval_s=plc["poll_interval_ms"] / 1000, timeout_s=plc["timeout_ms"] / 1000,
                        heartbeat_interval_s=plc["heartbeat_interval_ms"] / 1000,
                        reconnect_max_s=plc["reconnect_max_ms"] / 1000,
                        reuse_after_s=reuse_after_s(config.geometry),
                        regmap=RegisterMap(plc["plc_base"], plc["edge_base"]), opcua=opcua)


def reuse_after_s(geometry) -> float:
    """How long a tracking number stays one parcel's: far longer than any parcel is on the belt (a
    stopped belt included), short enough that a PLC reusing its numbers is noticed the same shift."""
    return max(REUSE_AFTER_S, 20 * geometry.end_m / geometry.belt_speed_m_s)


def build_controller(config, plan_clock=None):
    """`plan_clock()`: the local wall time for the plan schedule (datetime.now unless given)."""
    from datetime import datetime

    from fastpath import load_plan

    from .alarms import Alarms
    from .camera import FolderImages
    from .controller import Controller
    from .plan_schedule import Schedule
    from .records import Records
    alarms = Alarms()
    # The plan the schedule has in force now; [plan] file when there is no schedule.
    plan_path = Schedule.from_config(config).plan_at((plan_clock or datetime.now)())
    plan = load_plan(plan_path, n_chutes=len(config.geometry.chutes))
    link = open_link(config["plc"]["protocol"], link_settings(config))
    records = Records(config.resolve(config["records"]["folder"]), config["records"]["retention_days"],
                      alarms=alarms, reuse_after_s=link.settings.reuse_after_s)
    return Controller(config, plan, link, FolderImages(config["camera"]["folder"]), records, alarms=alarms,
                      plan_clock=plan_clock)


async def run_until_stopped(controller, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("controller running: line %s, plan %s, PLC %s", controller.config["line"]["name"],
             controller.plan.version, controller.link.address)
    screen = await _start_screen(controller)
    metrics, notifier = await _start_operations(controller)
    try:
        await controller.run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        notifier.cancel()
        await asyncio.gather(notifier, return_exceptions=True)       # its STOPPING=1
        if metrics is not None:
            await metrics.stop()
        if screen is not None:
            await screen.stop()
        controller.records.close()


async def _start_screen(controller):
    """The line screen beside the controller; a screen that cannot start must not stop the sorting."""
    from .web import TokenFileError, screen_settings, start_screen
    try:
        return await start_screen(controller, screen_settings(controller.config))
    except (OSError, TokenFileError) as exc:
        log.error("line screen not started: %s; the line keeps sorting without it", exc)
        return None


async def _start_operations(controller):
    """/metrics on its own address, and systemd's READY=1 and watchdog keep-alives from this loop."""
    import faulthandler

    from .metrics_http import start_metrics
    from .state import State
    from .systemd_notify import Notifier

    def status():
        report = controller.state.report
        return report.state.value + (f": {report.message}" if report.message else "")
    # The watchdog ends a hung controller with SIGABRT: every thread's stack goes to the journal first.
    faulthandler.enable()
    notifier = asyncio.create_task(Notifier().run(ready=lambda: controller.state.report.state != State.BOOTING,
                                                  status=status), name="systemd-notify")
    return await start_metrics(controller), notifier


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline run", description="Run the controller for a line.")
    parser.add_argument("--config", default="configs/county-24.toml", help="the line config file (TOML)")
    args = parser.parse_args(argv)
    from vision.image_header import limit_opencv_decoding

    from fastpath import PlanError

    from .config import load_or_exit
    from .config_problems import print_errors
    from .records import RecordsLocked
    # Before any thread starts: OpenCV reads its pixel limit from the environment.
    limit_opencv_decoding()
    config = load_or_exit(args.config)
    try:
        controller = build_controller(config)
    except PlanError as exc:
        print_errors(args.config, [exc])
        return 1
    except RecordsLocked as exc:
        log.error("%s", exc)
        print(f"sortline run: not started: {exc}", file=sys.stderr)
        return 3
    asyncio.run(run_until_stopped(controller))
    return 0
