"""deploy/prometheus and deploy/grafana against a real controller: `sortline run` in its own process
beside the simulated PLC, as systemd would start it (NOTIFY_SOCKET, WATCHDOG_USEC), scraped on its
[metrics] address after a short shift. promtool (Debian package prometheus) checks the scrape, the
rules, their unit tests and the scrape config; every metric the rules and the dashboard name must be
in the real scrape."""
import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.config_copy import derive_config
from fastpath.decision import Reason
from tests.conftest import REPO, free_port
from tests.edge.test_systemd_notify import Systemd

pytestmark = pytest.mark.timeout(300)

PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "sortline-dashboard.json"
PARCELS = 40
WATCHDOG_USEC = 1_000_000


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: apt-get install prometheus (make os-packages does it)"
    return subprocess.run([tool, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=PROMETHEUS)


def scrape_text(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode(), resp.headers["Content-Type"]


class Shift:
    mid: "Shift"

    def __init__(self, text: str, content_type: str, notes: list, report: dict, returncode: int, stderr: str):
        self.text, self.content_type, self.notes, self.report = text, content_type, notes, report
        self.returncode, self.stderr = returncode, stderr
        self.samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                        for f in text_string_to_metric_families(text) for s in f.samples}
        self.names = {name for name, _ in self.samples}

    def total(self, name: str) -> float:
        return sum(v for (n, _), v in self.samples.items() if n == name)


async def run_shift(tmp: Path) -> Shift:
    metrics_port = free_port()
    path = derive_config(REPO / "configs" / "county-24.toml", tmp / "line.toml", {
        "plc": {"port": free_port()}, "camera": {"folder": str(tmp / "camera")},
        "records": {"folder": str(tmp / "records")}, "plan": {"watch": False},
        "screen": {"enabled": True, "bind": "127.0.0.1", "port": free_port()},
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"}})
    systemd = Systemd(tmp / "notify.sock")
    report = tmp / "report.json"
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(path), "--parcels", str(PARCELS),
        "--rate", "12000", "--seed", "5", "--report", str(report), cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    env = {**__import__("os").environ, "NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    controller = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "run", "--config", str(path), cwd=REPO, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not systemd.times("READY=1"):
            assert time.monotonic() < deadline and controller.returncode is None, "no READY=1 from the controller"
            await asyncio.sleep(0.1)
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        while True:                             # a scrape while the belt runs: the line as it sorts
            mid = Shift((await asyncio.to_thread(scrape_text, url))[0], "", [], {}, 0, "")
            if mid.total("sortline_scans_total") >= 10:
                break
            assert time.monotonic() < deadline and sim.returncode is None, "no parcels scanned"
            await asyncio.sleep(0.3)
        _, err = await asyncio.wait_for(sim.communicate(), 200)
        assert sim.returncode == 0, err.decode()[-3000:]
        await asyncio.sleep(1.0)                # the last confirmations
        text, content_type = await asyncio.to_thread(scrape_text, url)
        controller.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(controller.communicate(), 30)
        await asyncio.sleep(0.2)
        end = Shift(text, content_type, systemd.drain(), json.loads(report.read_text()), controller.returncode,
                    err.decode())
        end.mid = mid
        return end
    finally:
        for proc in (sim, controller):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        systemd.close()


@pytest.fixture(scope="module")
def shift(tmp_path_factory) -> Shift:
    return asyncio.run(run_shift(tmp_path_factory.mktemp("ops")))


def test_the_controller_tells_systemd_it_is_ready_and_keeps_the_watchdog_fed(shift):
    fields = [f for _, f in shift.notes]
    assert fields.count("READY=1") == 1
    assert fields[-1] == "STOPPING=1" and shift.returncode == 0, shift.stderr[-3000:]
    beats = [t for t, f in shift.notes if f == "WATCHDOG=1"]
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    assert len(beats) > 20
    # Every half period while sorting: systemd (WatchdogSec = 1 s here) would never have killed it.
    assert max(gaps) < WATCHDOG_USEC / 1e6, max(gaps)
    assert any(f.startswith("STATUS=running") for f in fields)


def test_the_scrape_counts_the_shift(shift):
    assert shift.content_type.startswith("text/plain; version=0.0.4")
    assert shift.total("sortline_scans_total") == PARCELS
    assert shift.total("sortline_parcels_total") == PARCELS
    assert shift.total("sortline_assignments_sent_total") == PARCELS
    assert shift.total("sortline_confirmations_total") == shift.report["landed"] == PARCELS
    assert shift.total("sortline_stage_seconds_count") == 4 * PARCELS          # four stages per parcel
    assert shift.mid.samples[("sortline_plc_link_up", ())] == 1
    assert shift.mid.samples[("sortline_state", (("state", "running"),))] == 1
    # The simulated PLC has stopped since: the scrape says so.
    assert shift.samples[("sortline_plc_link_up", ())] == 0
    assert shift.samples[("sortline_state", (("state", "plc-link-lost"),))] == 1
    assert shift.samples[("sortline_plc_link_anomalies_total", (("kind", "link_lost"),))] >= 1
    for reason in Reason:       # zero or more, never absent
        assert ("sortline_parcels_total", (("reason", reason.name),)) in shift.samples
    assert shift.samples[("process_resident_memory_bytes", ())] > 50e6


def test_promtool_finds_no_problem_in_the_scrape(shift):
    checked = promtool("check", "metrics", stdin=shift.text)
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked.stdout + checked.stderr


def test_promtool_would_catch_a_counter_without_total():
    """The check above can fail: a counter named like a gauge is reported."""
    checked = promtool("check", "metrics", stdin="# HELP x_scans scans\n# TYPE x_scans counter\nx_scans 3\n")
    assert checked.returncode != 0 and "_total" in checked.stdout + checked.stderr


def test_rules_and_scrape_config_are_valid_and_the_alerts_fire_as_tested():
    for args in (("check", "rules", "sortline-rules.yml"), ("check", "config", "prometheus.yml"),
                 ("test", "rules", "sortline-rules.test.yml")):
        checked = promtool(*args)
        assert checked.returncode == 0, f"promtool {' '.join(args)}:\n{checked.stdout}{checked.stderr}"
    alerts = set(re.findall(r"^\s+- alert: (\w+)", (PROMETHEUS / "sortline-rules.yml").read_text(), re.M))
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS / "sortline-rules.test.yml").read_text()))
    must = {"SortlinePlcLinkLost", "SortlineNotSorting", "SortlineDeadlineMisses", "SortlineNoReadRateHigh",
            "SortlineRecordsBacklog", "SortlineDiskLow", "SortlineDown"}
    assert must <= tested <= alerts


def metric_names(expr: str) -> set[str]:
    words = set(re.findall(r"\b((?:sortline|process)_[a-z_]+)\b", expr))
    return {w for w in words if not w.endswith("_")}


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def rule_exprs() -> list[str]:
    text = (PROMETHEUS / "sortline-rules.yml").read_text()
    return re.findall(r"^ +expr: (?:>-\n)?(.*?)\n +(?:for|labels):", text, re.M | re.S)


def test_every_metric_the_rules_and_the_dashboard_use_is_in_the_real_scrape(shift):
    exprs = rule_exprs()
    assert len(exprs) == len(re.findall(r"- alert:", (PROMETHEUS / "sortline-rules.yml").read_text()))
    used = {n for e in exprs + dashboard_exprs() for n in metric_names(e)}
    assert len(used) > 25
    assert not used - shift.names, f"not served by the controller: {sorted(used - shift.names)}"


def test_every_dashboard_query_is_valid_promql(tmp_path):
    exprs = dashboard_exprs()
    assert len(exprs) > 20
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e.replace("$__rate_interval", "1m").replace("$instance", ".*")}
        for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps(rules))            # JSON is YAML
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
