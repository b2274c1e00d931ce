"""`sortline`: one command for the line, a subcommand per job.

Each subcommand lives with the part it belongs to and parses its own options (`main(argv)`);
this module only dispatches, so that `sortline sim` never imports the vision stack and
`sortline run` on a Modbus line never imports OPC UA.
"""
import importlib
import logging
import sys

DEFAULT_CONFIG = "configs/county-24.toml"

COMMANDS = {
    "run": ("edge.run", "run the controller for a line"),
    "demo": ("edge.demo", "a short simulated shift through the whole line, with a summary"),
    "check-config": ("edge.check_config", "check a line config and its sort plan"),
    "reload": ("edge.reload", "make the running controller load the sort plan again, between two parcels"),
    "sim": ("sim_plc.cli", "run the simulated PLC and line camera"),
    "read-label": ("edge.read_label", "read label images and print what was read, by a line's plan with --config"),
    "report": ("edge.report", "shift report from the parcel records: CSV and an HTML page with charts"),
    "plc-check": ("drivers.plc_check", "check a PLC against docs/plc-interface.md from outside, for commissioning"),
    "replay": ("edge.replay", "decide the parcels of a time range again: check their records, or what another plan does"),
}

BENCHES = {
    "fastpath": ("fastpath.bench.routing", "routing core: decisions per second, compiled vs pure Python"),
    "vision": ("vision.bench.tiers", "label reading: read rate and latency per difficulty tier"),
    "vision-peers": ("vision.bench.peers", "label reading on real photos beside zxing-cpp alone and PP-OCR"),
    "routing-lines": ("vision.bench.routing_lines", "routing lines: the text model beside the PP-OCR recogniser on line cuts"),
    "link": ("drivers.bench.link", "PLC link: event-to-assignment round trip, events/s, poll interval, bare library"),
    "e2e": ("edge.bench.e2e", "simulated PLC + controller processes: latency, misses, accuracy, CPU"),
    "sim": ("sim_plc.bench.timing", "simulated PLC: divert timing, camera rendering cost, event-loop wake-ups"),
    "web": ("edge.bench.web", "line screen and shift report costs"),
    "crash": ("edge.bench.crash", "kill -9 the controller mid-shift, restart, check every record"),
    "soak": ("edge.bench.soak", "an hour of parcels with a fault every few minutes: lost, duplicated, late, resources"),
    "replay": ("edge.bench.replay", "sortline replay on a day of parcel records: parcels per second, seconds for the day"),
}


def setup_logging(verbose: bool = False) -> None:
    from .journal_log import journald_handler, under_journald
    # Under systemd each line carries its journald priority (edge/journal_log.py).
    handlers = [journald_handler()] if under_journald() else None
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The links report connection trouble themselves, once, with the remedy.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _usage(table: dict, prog: str) -> str:
    width = max(map(len, table))
    lines = [f"usage: {prog} COMMAND [options]   ({prog} COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in table.items()]
    return "\n".join(lines)


def _dispatch(table: dict, argv: list[str], prog: str) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(table, prog))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in table:
        print(f"{prog}: unknown command {name!r}\n\n{_usage(table, prog)}", file=sys.stderr)
        return 2
    module = importlib.import_module(table[name][0])
    return int(module.main(rest) or 0)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv[:1] or "--verbose" in argv[:1]
    if verbose:
        argv = argv[1:]
    if argv[:1] == ["--version"]:
        from edge import __version__
        print(f"sortline {__version__}")
        return 0
    setup_logging(verbose)
    if argv[:1] == ["bench"]:
        return _dispatch(BENCHES, argv[1:], "sortline bench")
    table = {**COMMANDS, "bench": ("", "measure a part: " + ", ".join(BENCHES))}
    return _dispatch(table, argv, "sortline")


if __name__ == "__main__":
    sys.exit(main())
