"""The /metrics exposition: prometheus-client's text format, the figures the controller counted,
correct types, and a zero sample for every reason and outcome the product has."""
from prometheus_client.parser import text_string_to_metric_families

from drivers.regmap import DivertResult
from edge import __version__
from edge.metrics import READ_OUTCOMES, STAGES, ControllerMetrics
from edge.state import State
from fastpath.decision import Reason


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text: str) -> dict:
    """(sample name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_counters_histograms_and_labels_render():
    m = ControllerMetrics()
    m.parcels.inc("PREADVICE")
    m.parcels.inc("PREADVICE")
    m.parcels.inc('odd"name')
    m.stage.observe(0.004, "read")
    m.stage.observe(0.3, "read")
    m.stage.observe(7.0, "read")
    text = m.render()
    got = samples(text)
    assert got[("sortline_parcels_total", (("reason", "PREADVICE"),))] == 2
    assert got[("sortline_parcels_total", (("reason", 'odd"name'),))] == 1
    assert 'sortline_parcels_total{reason="odd\\"name"} 1.0' in text
    assert "# TYPE sortline_stage_seconds histogram" in text
    read = (("stage", "read"),)
    assert got[("sortline_stage_seconds_bucket", (("le", "0.005"), *read))] == 1
    assert got[("sortline_stage_seconds_bucket", (("le", "0.3"), *read))] == 2      # le is "at most"
    assert got[("sortline_stage_seconds_bucket", (("le", "+Inf"), *read))] == 3
    assert got[("sortline_stage_seconds_count", read)] == 3
    assert abs(got[("sortline_stage_seconds_sum", read)] - 7.304) < 1e-9
    assert text.endswith("\n")


def test_every_reason_and_outcome_has_a_sample_before_it_happens():
    got = samples(ControllerMetrics().render())
    for reason in Reason:
        assert got[("sortline_parcels_total", (("reason", reason.name),))] == 0
    for result in DivertResult:
        assert got[("sortline_confirmations_total", (("result", result.name),))] == 0
    for outcome in READ_OUTCOMES:
        assert got[("sortline_label_reads_total", (("outcome", outcome),))] == 0
    for stage in STAGES:
        assert got[("sortline_stage_seconds_count", (("stage", stage),))] == 0
    assert got[("sortline_decisions_late_total", ())] == 0
    assert got[("sortline_deadline_slack_seconds_count", ())] == 0


def test_counters_end_in_total_and_no_created_series():
    text = ControllerMetrics().render()
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family
    assert "_created" not in text


def test_build_info_and_process_metrics():
    got = samples(ControllerMetrics().render())
    (build,) = [k for k in got if k[0] == "sortline_build_info"]
    assert dict(build[1])["version"] == __version__ and got[build] == 1
    assert got[("process_resident_memory_bytes", ())] > 1e6
    assert got[("process_open_fds", ())] > 0
    assert any(k[0] == "python_info" for k in got)


def test_the_controller_figures_are_read_at_scrape(tmp_path):
    """A controller built from a line config: scans, state, link, plan and records, fresh at each scrape."""
    from edge.config import load_config
    from edge.config_copy import derive_config
    from edge.run import build_controller
    from tests.conftest import REPO, free_port
    path = derive_config(REPO / "configs" / "county-24.toml", tmp_path / "line.toml", {
        "plc": {"port": free_port()}, "camera": {"folder": str(tmp_path / "camera")},
        "records": {"folder": str(tmp_path / "records")}, "plan": {"watch": False}})
    controller = build_controller(load_config(path))
    try:
        got = samples(controller.metrics.render())
        assert got[("sortline_scans_total", ())] == 0
        assert got[("sortline_assignments_sent_total", ())] == 0
        assert got[("sortline_plc_link_up", ())] == 0
        assert got[("sortline_plc_link_anomalies_total", (("kind", "link_lost"),))] == 0
        assert got[("sortline_state", (("state", "booting"),))] == 1
        assert sum(got[("sortline_state", (("state", s.value),))] for s in State) == 1
        assert got[("sortline_plan_info", (("name", controller.plan.name), ("version", controller.plan.version)))] == 1
        assert got[("sortline_records_backlog_rows", ())] == 0
        from edge.web.i18n import ALARMS
        for key in ALARMS:      # every alarm the screen knows: 0 before it is ever raised
            assert got[("sortline_alarm", (("key", key),))] == 0
            assert got[("sortline_alarms_raised_total", (("key", key),))] == 0
        assert got[("sortline_records_disk_free_bytes", ())] > 0
        assert got[("sortline_records_disk_size_bytes", ())] >= got[("sortline_records_disk_free_bytes", ())]
        controller.stats.scans += 3
        controller.stats.sent += 2
        controller.link.status.count("link_lost")
        controller.alarms.raise_("camera", "no images", "check the camera")
        got = samples(controller.metrics.render())
        assert got[("sortline_scans_total", ())] == 3
        assert got[("sortline_assignments_sent_total", ())] == 2
        assert got[("sortline_plc_link_anomalies_total", (("kind", "link_lost"),))] == 1
        assert got[("sortline_alarm", (("key", "camera"),))] == 1
        assert got[("sortline_alarms_raised_total", (("key", "camera"),))] == 1
        controller.alarms.clear("camera")
        got = samples(controller.metrics.render())
        assert got[("sortline_alarm", (("key", "camera"),))] == 0
        assert got[("sortline_alarms_raised_total", (("key", "camera"),))] == 1     # a counter never goes down
        # A count set back elsewhere (a new shift's figures) never makes a counter go down.
        controller.stats.scans = 1
        assert samples(controller.metrics.render())[("sortline_scans_total", ())] == 4
        controller.stats.scans = 5
        assert samples(controller.metrics.render())[("sortline_scans_total", ())] == 8
        kinds = {f.name: f.type for f in text_string_to_metric_families(controller.metrics.render())}
        assert kinds["sortline_scans"] == kinds["sortline_alarms_raised"] == "counter"
        assert kinds["sortline_plc_link_anomalies"] == kinds["sortline_label_reads_hedged"] == "counter"
        assert kinds["sortline_state"] == kinds["sortline_records_backlog_rows"] == "gauge"
    finally:
        controller.records.close()


async def test_the_metrics_address_answers_scrapes_only_and_a_taken_port_does_not_stop_the_line(tmp_path, caplog):
    import socket

    import aiohttp

    from edge.config import load_config
    from edge.config_copy import derive_config
    from edge.metrics_http import MetricsServer, start_metrics
    from edge.run import build_controller
    from tests.conftest import REPO, free_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = derive_config(REPO / "configs" / "county-24.toml", tmp_path / "line.toml", {
            "plc": {"port": free_port()}, "camera": {"folder": str(tmp_path / "camera")},
            "records": {"folder": str(tmp_path / "records")}, "plan": {"watch": False},
            "metrics": {"listen": f"127.0.0.1:{port}"}})
        controller = build_controller(load_config(path))
        try:
            assert await start_metrics(controller) is None
            (line,) = [r.getMessage() for r in caplog.records if "/metrics cannot listen" in r.getMessage()]
            assert f"127.0.0.1:{port}" in line and "choose another [metrics] listen" in line
            assert "the line keeps sorting" in line
        finally:
            controller.records.close()
    server = MetricsServer(controller.metrics, "127.0.0.1", 0)
    await server.start()
    try:
        controller.stats.scans = 7
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
            async with http.get("/metrics") as r:
                assert r.status == 200 and r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
                assert "\nsortline_scans_total 7.0\n" in await r.text()
            async with http.get("/api/view") as r:
                assert r.status == 404
            async with http.post("/metrics", data=b"x") as r:
                assert r.status == 405
    finally:
        await server.stop()


def test_listen_addresses():
    import pytest

    from edge.metrics_http import ListenError, parse_listen
    assert parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_listen("[::1]:9108") == ("::1", 9108)
    assert parse_listen("0.0.0.0:1") == ("0.0.0.0", 1)
    for bad, why in (("9108", "not an address and a port"), (":9108", "not an address and a port"),
                     ("sorter-3:9108", "'sorter-3' is not an IP address"),
                     ("127.0.0.1:0", "port '0' is not a whole number from 1 to 65535"),
                     ("127.0.0.1:http", "port 'http' is not")):
        with pytest.raises(ListenError, match=why):
            parse_listen(bad)
