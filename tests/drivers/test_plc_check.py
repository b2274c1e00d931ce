"""`sortline plc-check` against the simulated PLC, against PLCs that are wrong in one way each and against
hosts that are no PLC: each wrong one gets the FAIL that names it, and none of them gets a single write."""
import asyncio
import contextlib
import dataclasses
import http.server
import json
import sys
import threading

import pytest
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers import plc_check
from drivers import regmap as rm
from drivers.plc_check import FAIL, PASS, SKIP, WARN
from sim_plc.plc import SimPlc
from tests.conftest import REPO, free_port
from tests.sim_plc.helpers import GEOMETRY

from .peers import drain, sim_plc

pytestmark = pytest.mark.timeout(60)
on_session_loop = pytest.mark.asyncio(loop_scope="session")


async def run(*args: str) -> plc_check.Report:
    return await plc_check.check(plc_check.parse(list(args)))


def by_name(report) -> dict:
    return {c.name: c for c in report.checks}


class FakePlc:
    """Holding registers on pymodbus' own server, laid out as a test says; a heartbeat register that
    counts every 100 ms if asked; every request's function code and every write recorded."""

    def __init__(self, port: int, words: int, image: dict, heartbeat_at: int | None, delay_s: float = 0.0):
        self.port, self.image, self.heartbeat_at, self.delay_s = port, image, heartbeat_at, delay_s
        self.functions: set[int] = set()
        self.writes: list = []
        device = SimDevice(id=0, simdata=[SimData(0, count=words, values=0, datatype=DataType.REGISTERS)],
                           action=self._action)
        self.server = ModbusTcpServer(device, address=("127.0.0.1", port))
        self._beat: asyncio.Task | None = None

    async def _action(self, function_code, start, address, count, registers, values):
        self.functions.add(function_code)
        if values is not None:
            self.writes.append((function_code, address, list(values)))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return None

    @property
    def regs(self) -> list[int]:
        return self.server.context.devices[0].block["x"][2]

    async def _cycle(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            if self.heartbeat_at is not None:
                self.regs[self.heartbeat_at] = (self.regs[self.heartbeat_at] + 1) & 0xFFFF

    async def __aenter__(self):
        await self.server.serve_forever(background=True)
        for address, values in self.image.items():
            self.regs[address:address + len(values)] = values
        self._beat = asyncio.create_task(self._cycle())
        return self

    async def __aexit__(self, *exc):
        self._beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._beat
        await self.server.shutdown()

    def assert_untouched(self) -> None:
        assert self.writes == [] and self.functions <= {3}, (self.writes, self.functions)


HEADER = [rm.INTERFACE_VERSION, 0, rm.LineState.RUNNING, 7]       # VERSION, PLC_HEARTBEAT, LINE_STATE, BOOT_ID
DOC_WORDS = 300 + rm.EDGE_BLOCK_WORDS


@contextlib.asynccontextmanager
async def recorded_sim(boot_id: int = 7):
    """The simulated PLC on Modbus, with every controller write it receives recorded."""
    plc = SimPlc(GEOMETRY, port=free_port(), heartbeat_timeout_s=0.5, boot_id=boot_id)
    writes: list = []

    def record(address, values):
        writes.append((address, list(values)))
        return plc.model.on_edge_write(address, values)
    plc.modbus.bind_model(record)
    async with plc:
        try:
            yield plc, writes
        finally:
            await drain(plc.model)


async def parcels(model, every_s: float = 0.15) -> None:
    while True:
        model.scan()
        await asyncio.sleep(every_s)


@on_session_loop
async def test_the_simulator_passes_with_parcels_flowing_and_gets_no_write():
    async with recorded_sim() as (plc, writes):
        feeding = asyncio.create_task(parcels(plc.model))
        try:
            report = await run("--host", "127.0.0.1", "--port", str(plc.modbus.port), "--seconds", "2")
        finally:
            feeding.cancel()
        checks = by_name(report)
        assert [c.name for c in report.checks if c.status == FAIL] == []
        for name in ("connection", "plc_block", "controller_block", "version", "boot_id", "line_state",
                     "heartbeat", "scan_ring", "confirm_ring", "controller_watch"):
            assert checks[name].status == PASS, checks[name]
        assert checks["latency"].status in (PASS, WARN)          # a busy test machine may hold a poll
        assert "went" in checks["scan_ring"].found and "went" in checks["confirm_ring"].found
        assert checks["heartbeat_follow"].status == SKIP and checks["boot_id_retained"].status == SKIP
        assert writes == [] and report.written == [] and plc.model.counters.readonly_writes == 0


@on_session_loop
async def test_write_heartbeat_sees_the_plc_follow_and_writes_the_heartbeat_registers_only():
    async with recorded_sim() as (plc, writes):
        report = await run("--host", "127.0.0.1", "--port", str(plc.modbus.port), "--seconds", "1",
                           "--write-heartbeat")
        follow = by_name(report)["heartbeat_follow"]
        assert follow.status == PASS, follow
        assert "15 of 15" in follow.found and "cleared" in follow.found
        assert writes and {(a, len(v)) for a, v in writes} == {(300, 5)}
        assert [v[1:] for _, v in writes] == [[0, 0, 0, 0]] * len(writes)      # acknowledgements as read
        assert "300-304" in report.written[0]
        assert not plc.model.edge_alive()                  # left as a stopped controller leaves the PLC


@on_session_loop
async def test_a_plc_block_one_register_off_is_named_with_the_setting_that_fits():
    image = {1: HEADER, 301: [0] * rm.EDGE_BLOCK_WORDS}
    async with FakePlc(free_port(), DOC_WORDS + 1, image, heartbeat_at=2) as fake:
        report = await run("--host", "127.0.0.1", "--port", str(fake.port), "--seconds", "2")
        checks = by_name(report)
        assert report.exit_code == 1 and checks["version"].status == FAIL
        assert "holds 0" in checks["version"].found
        assert "start at register 1" in checks["version"].check and "--plc-base 1 --edge-base 301" in \
            checks["version"].check
        assert checks["heartbeat"].status == FAIL and checks["line_state"].status == FAIL
        fake.assert_untouched()


@on_session_loop
async def test_a_frozen_heartbeat_fails_and_says_what_to_check():
    async with FakePlc(free_port(), DOC_WORDS, {0: HEADER}, heartbeat_at=None) as fake:
        report = await run("--host", "127.0.0.1", "--port", str(fake.port), "--seconds", "2")
        checks = by_name(report)
        assert [c.name for c in report.checks if c.status == FAIL] == ["heartbeat"]
        assert "stayed at 0 for 2" in checks["heartbeat"].found
        assert "CPU in RUN" in checks["heartbeat"].check and "register 1" in checks["heartbeat"].check
        fake.assert_untouched()


@on_session_loop
async def test_slow_answers_fail_the_latency_against_the_longest_plc_cycle():
    async with FakePlc(free_port(), DOC_WORDS, {0: HEADER}, heartbeat_at=1, delay_s=0.06) as fake:
        report = await run("--host", "127.0.0.1", "--port", str(fake.port), "--seconds", "2")
        checks = by_name(report)
        assert [c.name for c in report.checks if c.status == FAIL] == ["latency"]
        p50 = float(checks["latency"].found.split("p50 ")[1].split(" ms")[0])
        assert p50 >= 60 and "p99 at most 20 ms, the longest PLC cycle" in checks["latency"].expected
        assert "one request per cycle" in checks["latency"].check
        fake.assert_untouched()


@on_session_loop
async def test_a_plc_serving_one_request_per_10_ms_cycle_is_within_the_limit_but_warned():
    async with recorded_sim() as (plc, writes):
        plc.modbus.serve_in_cycles(0.01, one_per_cycle=True)
        report = await run("--host", "127.0.0.1", "--port", str(plc.modbus.port), "--seconds", "2")
        latency = by_name(report)["latency"]
        assert latency.status == WARN and "5 ms or less" in latency.expected, latency
        assert report.exit_code == 0 and writes == []


@on_session_loop
async def test_a_plc_serving_one_request_per_30_ms_cycle_fails_the_latency():
    async with recorded_sim() as (plc, writes):
        plc.modbus.serve_in_cycles(0.03, one_per_cycle=True)
        report = await run("--host", "127.0.0.1", "--port", str(plc.modbus.port), "--seconds", "2")
        latency = by_name(report)["latency"]
        assert latency.status == FAIL and "p99 at most 20 ms" in latency.expected, latency
        assert report.exit_code == 1 and writes == []


@on_session_loop
async def test_a_unit_id_the_plc_does_not_serve_is_named():
    async with recorded_sim() as (plc, writes):
        plc.modbus.set_unit(5)
        report = await run("--host", "127.0.0.1", "--port", str(plc.modbus.port), "--seconds", "1")
        connection = by_name(report)["connection"]
        assert connection.status == FAIL and "unit id 1 with exception 0B" in connection.found, connection
        assert "--unit 1" in connection.check and writes == []


@on_session_loop
async def test_a_modbus_device_with_another_register_map_is_told_apart():
    meter = {0: [2301, 2298, 2305, 4998, 1210, 0, 815]}        # an energy meter: volts, hertz, amps...
    async with FakePlc(free_port(), 60, meter, heartbeat_at=None) as fake:
        report = await run("--host", "127.0.0.1", "--port", str(fake.port), "--seconds", "1")
        checks = by_name(report)
        assert checks["connection"].status == PASS
        assert checks["version"].status == FAIL and "holds 2301" in checks["version"].found
        assert "sorter PLC" in checks["version"].check
        assert checks["plc_block"].status == FAIL and "exception 02 ILLEGAL DATA ADDRESS" in checks["plc_block"].found
        assert checks["controller_block"].status == FAIL and checks["heartbeat"].status == FAIL
        assert checks["scan_ring"].status == SKIP
        fake.assert_untouched()


async def silent_server(port: int, received: list):
    """Accepts connections and reads, and never answers: a PLC ignoring a unit id it does not serve."""
    async def serve(reader, writer):
        while data := await reader.read(256):
            received.append(data)
        writer.close()
    return await asyncio.start_server(serve, "127.0.0.1", port)


@on_session_loop
async def test_no_answer_for_the_unit_id_is_said_so_within_seconds():
    port, received = free_port(), []
    server = await silent_server(port, received)
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        report = await run("--host", "127.0.0.1", "--port", str(port), "--unit", "3", "--seconds", "1")
        assert loop.time() - t0 < 5
    finally:
        server.close()
    connection = by_name(report)["connection"]
    assert connection.status == FAIL and connection.found.startswith("no answer for unit id 3")
    assert "--unit 3" in connection.check
    requests = b"".join(received).replace(b"\r\n\r\n", b"")
    assert all(requests[i + 7] == 3 for i in range(0, len(requests), 12))      # function code 3 only


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "edge.cli", "plc-check", *args, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


@on_session_loop
async def test_an_http_server_and_a_closed_port_are_named_without_a_traceback():
    port = free_port()
    web = http.server.ThreadingHTTPServer(("127.0.0.1", port), Quiet)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        rc, out, err = await cli("--host", "127.0.0.1", "--port", str(port), "--seconds", "1", "--json")
    finally:
        web.shutdown()
        web.server_close()
    report = json.loads(out)
    connection = report["checks"][0]
    assert rc == 1 and report["result"] == FAIL and "Traceback" not in err
    assert connection["status"] == FAIL and "an HTTP server answers" in connection["found"]
    assert "Modbus TCP is usually 502" in connection["check"]
    rc, out, err = await cli("--host", "127.0.0.1", "--port", str(free_port()), "--seconds", "1")
    assert rc == 1 and "Traceback" not in err
    assert "FAIL  connection" in out and "nothing listens on" in out and "written   nothing" in out


@on_session_loop
async def test_the_boot_id_is_compared_across_a_power_cycle(tmp_path):
    memory = tmp_path / "boot.json"
    async with recorded_sim(boot_id=7) as (plc, writes):
        args = ("--host", "127.0.0.1", "--port", str(plc.modbus.port), "--seconds", "1", "--remember", str(memory))
        first = by_name(await run(*args))["boot_id_retained"]
        assert first.status == SKIP and "boot id 7 stored" in first.found and "power-cycle" in first.check
        same = by_name(await run(*args))["boot_id_retained"]
        assert same.status == WARN and "7 now" in same.found
        await plc.restart(down_s=0.2)
        after = by_name(await run(*args))["boot_id_retained"]
        assert after.status == PASS and "boot id 7" in after.found and "8 now" in after.found
        stored = json.loads(memory.read_text())
        stored[next(iter(stored))]["boot_id"] = 20          # as a PLC whose counter started again at power-up
        memory.write_text(json.dumps(stored))
        back = by_name(await run(*args))["boot_id_retained"]
        assert back.status == FAIL and "went back" in back.found
        assert writes == []


@on_session_loop
async def test_the_simulators_opcua_server_passes_and_gets_writes_only_when_asked(opcua_server):
    async with sim_plc("opcua", opcua_server, heartbeat_timeout_s=0.5) as (plc, port):
        writes: list = []
        model = plc.model
        model.on_edge_write = lambda address, values: writes.append((address, values)) or \
            type(model).on_edge_write(model, address, values)
        report = await run("--endpoint", opcua_server.url, "--seconds", "2")
        checks = by_name(report)
        assert [c.name for c in report.checks if c.status == FAIL] == []
        for name in ("connection", "interface", "controller_access", "version", "boot_id", "heartbeat",
                     "scan_ring", "confirm_ring", "controller_watch"):
            assert checks[name].status == PASS, checks[name]
        assert checks["subscription"].status in (PASS, WARN)      # a busy machine may merge two notifications
        assert writes == []
        report = await run("--endpoint", opcua_server.url, "--seconds", "1", "--write-heartbeat")
        assert by_name(report)["heartbeat_follow"].status == PASS, by_name(report)["heartbeat_follow"]
        assert writes and {a for a, _ in writes} <= {model.map.edge(rm.EDGE_HEARTBEAT), model.map.edge(1),
                                                     model.map.edge(3)}


def test_the_ring_rules():
    ring = tuple(range(17, 33))                          # seqs 17..32 after 32 events
    assert plc_check.ring_problem(32, ring) is None
    assert plc_check.ring_problem(0, (0,) * 16) is None
    assert "holds 17" in plc_check.ring_problem(33, ring)                        # SCAN_SEQ before the slot
    assert "above the newest 31" in plc_check.ring_problem(31, ring)
    assert plc_check.ring_problem(31, ring, newest_after=32) is None             # landed between two reads
    assert "belongs in slot 2" in plc_check.ring_problem(3, (1, 3, 2) + (0,) * 13)


def test_a_line_config_gives_the_settings_the_controller_runs_with(tmp_path):
    from edge.config import SCHEMA, load_config
    from edge.run import link_settings
    assert set(plc_check.PLC_KEYS) == set(SCHEMA["plc"])
    for name in ("county-24.toml", "county-24-line2.toml"):
        path = REPO / "configs" / name
        opts = plc_check.parse(["--config", str(path)])
        config = load_config(path)
        theirs = link_settings(config)
        assert dataclasses.replace(opts.settings, reuse_after_s=theirs.reuse_after_s) == theirs
        assert opts.protocol == config["plc"]["protocol"]
        assert opts.heartbeat_timeout_s * 1000 == config["plc"]["heartbeat_timeout_ms"]
    bad = tmp_path / "line.toml"
    bad.write_text("[plc]\nhost = \"10.0.0.5\"\nedge_bse = 400\n")
    with pytest.raises(SystemExit):
        plc_check.parse(["--config", str(bad)])
    opts = plc_check.parse(["--config", str(path), "--host", "10.0.0.9", "--unit", "4"])
    assert (opts.protocol, opts.settings.host, opts.settings.port, opts.settings.unit) == ("modbus", "10.0.0.9",
                                                                                         theirs.port, 4)
