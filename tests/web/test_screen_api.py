"""The line screen's server without a browser: login, CSRF, actions reaching a simulated PLC, the feed.

A real controller (built from a line config) talks Modbus to a simulated PLC on 127.0.0.1; the
screen runs on its own port; requests come from an aiohttp client as a browser would send them.
"""
import asyncio
import json
import re

import aiohttp
import pytest

from edge.web import ScreenSettings, TokenFileError, screen_settings, start_screen
from edge.web.auth import Sessions
from edge.web.settings import ensure_token_file, read_tokens
from tests.conftest import free_port
from tests.web.conftest import running_line

pytestmark = pytest.mark.timeout(60)

SHARED = "shared-token-for-tests-0001"
NAMED = "named-token-for-tests-0002"


@pytest.fixture
async def line(tmp_path):
    async with running_line(tmp_path, f"{SHARED}\n李四 {NAMED}   # bound to a name\n") as (controller, model, screen,
                                                                                         plans):
        jar = aiohttp.CookieJar(unsafe=True)          # the screen is addressed by IP: keep its cookie
        async with aiohttp.ClientSession(f"http://127.0.0.1:{screen.port}", cookie_jar=jar,
                                         timeout=aiohttp.ClientTimeout(total=10)) as http:
            yield controller, model, screen, http, plans


async def login(http, token=SHARED, name="张三"):
    async with http.post("/api/login", json={"name": name, "token": token}) as r:
        return r.status, await r.json()


def logbook(controller):
    controller.records.flush(5.0)       # written by the records thread: wait for it
    return controller.records.db.execute("SELECT who, action, detail FROM actions ORDER BY id").fetchall()


async def test_loopback_is_the_default_address(line):
    controller, _, screen, _, _ = line
    assert screen_settings(controller.config).bind == "127.0.0.1"
    assert screen._runner.addresses[0][0] == "127.0.0.1"


async def test_an_action_without_login_is_refused_and_changes_nothing(line):
    controller, model, _, http, _ = line
    async with http.post("/api/chutes/3", json={"enabled": False}) as r:
        assert r.status == 403 and (await r.json())["error"] == "not_logged_in"
    assert model.disabled_chutes() == set() and controller.disabled == set()


async def test_a_wrong_token_is_refused_recorded_and_guessing_is_braked(line):
    controller, _, _, http, _ = line
    for _ in range(5):
        status, body = await login(http, token="wrong-token-000000000000")
        assert (status, body["error"]) == (403, "bad_token")
    status, body = await login(http, token="wrong-token-000000000001")    # the sixth waits, then is refused
    assert (status, body["error"]) == (429, "too_many_tries")
    status, body = await login(http)                                     # the right token still logs in
    assert status == 200 and body["who"] == "张三"
    refused = [row for row in logbook(controller) if row[1] == "screen login refused"]
    assert len(refused) == 5 and refused[0][0] == "张三"


async def test_actions_need_the_csrf_token_and_a_json_body(line):
    controller, model, _, http, _ = line
    status, session = await login(http)
    assert status == 200 and session["who"] == "张三"
    async with http.post("/api/chutes/3", json={"enabled": False}) as r:
        assert r.status == 403 and (await r.json())["error"] == "csrf"
    headers = {"X-CSRF-Token": session["csrf"]}
    async with http.post("/api/chutes/3", json={"enabled": False},
                         headers={**headers, "Origin": "http://evil.example"}) as r:
        assert r.status == 403 and (await r.json())["error"] == "csrf"
    async with http.post("/api/chutes/3", data="enabled=false", headers=headers) as r:
        assert r.status == 400
    assert model.disabled_chutes() == set()
    async with http.post("/api/chutes/3", json={"enabled": False}, headers=headers) as r:
        assert r.status == 200, await r.text()
    assert model.disabled_chutes() == {3}
    async with http.post("/api/chutes/3", json={"enabled": True}, headers=headers) as r:
        assert r.status == 200
    assert model.disabled_chutes() == set()
    assert [row[:3] for row in logbook(controller) if "chute" in row[1]] == [
        ("张三", "disable chute", "3"), ("张三", "enable chute", "3")]


async def test_a_named_token_records_its_own_name(line):
    controller, _, _, http, _ = line
    status, session = await login(http, token=NAMED, name="someone else")
    assert status == 200 and session["who"] == "李四"
    async with http.post("/api/chutes/5", json={"enabled": False}, headers={"X-CSRF-Token": session["csrf"]}) as r:
        assert r.status == 200
    assert ("李四", "disable chute", "5") in logbook(controller)


async def test_a_shared_token_needs_a_name(line):
    _, _, _, http, _ = line
    status, body = await login(http, name="  ")
    assert (status, body["error"]) == (400, "name_needed")


async def test_a_chute_that_does_not_exist_is_refused(line):
    _, model, _, http, _ = line
    _, session = await login(http)
    async with http.post("/api/chutes/99", json={"enabled": False}, headers={"X-CSRF-Token": session["csrf"]}) as r:
        body = await r.json()
    assert r.status == 404 and body["error"] == "no_such_chute" and body["fields"] == {"chute": 99}
    assert model.disabled_chutes() == set()


async def test_logout_ends_the_session(line):
    _, _, _, http, _ = line
    _, session = await login(http)
    headers = {"X-CSRF-Token": session["csrf"]}
    async with http.post("/api/logout", json={}, headers=headers) as r:
        assert r.status == 200
    async with http.post("/api/chutes/3", json={"enabled": False}, headers=headers) as r:
        assert r.status == 403


async def test_plan_reload_refused_with_its_reason_then_accepted(line):
    controller, _, _, http, plans = line
    _, session = await login(http)
    headers = {"X-CSRF-Token": session["csrf"]}
    plan = plans / "county-24.plan.toml"
    good = plan.read_text(encoding="utf-8")
    before = controller.plan.version
    plan.write_text(good.replace("chutes = [1, 2]", "chutes = [1, 99]", 1), encoding="utf-8")
    async with http.post("/api/plan/reload", json={}, headers=headers) as r:
        body = await r.json()
    assert r.status == 409 and body["error"] == "plan_error" and "99" in body["detail"]
    async with http.get("/api/view") as r:
        view = await r.json()
    assert view["plan_version"] == before and "99" in view["plan_refused"]
    plan.write_text(good.replace(f'version = "{before}"', 'version = "2026-11-28.2"'), encoding="utf-8")
    async with http.post("/api/plan/reload", json={}, headers=headers) as r:
        assert r.status == 200 and (await r.json())["version"] == "2026-11-28.2"
    async with http.get("/api/view") as r:
        view = await r.json()
    assert view["plan_version"] == "2026-11-28.2" and view["plan_refused"] is None
    actions = [row[1] for row in logbook(controller)]
    assert actions[-2:] == ["reload plan refused", "reload plan"]


async def test_the_live_feed_pushes_a_new_view_every_second(line):
    _, _, _, http, _ = line
    views = []
    async with http.get("/api/live") as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        async with asyncio.timeout(5):
            async for line_bytes in r.content:
                if line_bytes.startswith(b"data: ") and len(line_bytes) > 10:
                    views.append(json.loads(line_bytes[6:]))
                    if len(views) == 3:
                        break
    assert views[2]["now_wall"] - views[1]["now_wall"] == pytest.approx(1.0, abs=0.3)
    # The controller's loop is not running in these tests: it stays "booting", with its remedy.
    assert (views[2]["state"], views[2]["level"], views[2]["remedy"]) == ("booting", "warn", "booting")
    assert len(views[2]["chutes"]) == 24
    assert views[2]["chutes"][0]["roles"] == ["Xiaolinshui"]


async def test_the_feed_stops_even_when_a_refresh_loses_its_cancellation():
    from edge.web.live import LiveFeed

    class SwallowingView:
        """A view whose build eats a cancellation, as Python 3.11's wait_for can when the awaited
        call finishes at that moment."""
        async def build(self):
            try:
                await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                pass
            return {}
    feed = LiveFeed(SwallowingView(), period_s=0.3)
    feed.start()
    await asyncio.sleep(0.1)                     # in the middle of a build
    await asyncio.wait_for(feed.stop(), 3.0)


async def test_the_page_forbids_foreign_scripts_and_framing(line):
    _, _, _, http, _ = line
    async with http.get("/") as r:
        assert r.status == 200
        csp = r.headers["Content-Security-Policy"]
        page = await r.text()
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert 'href="/coding"' in page                  # the end chute's worker gets there from the screen


def test_a_first_start_creates_a_private_token_file(tmp_path):
    path = tmp_path / "records" / "screen-tokens.txt"
    ensure_token_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    (token, name), = read_tokens(path).items()
    assert len(token) >= 16 and name == ""


def test_a_short_token_is_refused_with_its_line(tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_text("# technicians\nwang 1234\n")
    with pytest.raises(TokenFileError, match=r"tokens.txt:2: the token must be at least 16"):
        read_tokens(path)


def test_a_token_file_that_is_a_pipe_or_endless_is_refused_at_once(tmp_path):
    """Read at every login, on the event loop: it must never wait for a writer or read forever."""
    import os
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    with pytest.raises(TokenFileError, match="named pipe"):
        read_tokens(fifo)
    endless = tmp_path / "zero.txt"
    endless.symlink_to("/dev/zero")
    with pytest.raises(TokenFileError, match="screen token file"):
        read_tokens(endless)


def test_an_idle_session_expires():
    sessions = Sessions(idle_s=0.0)
    s = sessions.open("王工")
    assert sessions.get(s.id) is None


async def test_a_screen_turned_off_in_the_config_does_not_listen(tmp_path):
    settings = ScreenSettings(enabled=False, bind="127.0.0.1", port=free_port(), token_file=tmp_path / "t")
    assert await start_screen(object(), settings) is None
    assert not (tmp_path / "t").exists()


def test_plc_verdicts_count_once_whether_settled_or_recent(tmp_path):
    import time

    from edge.records import Records
    from edge.web.live import RecordsReader
    from fastpath.decision import Decision, Reason
    from vision.result import LabelRead
    records = Records(tmp_path)
    read = LabelRead(("SF1234567890123",), None, "SF")
    verdicts = ["LATE", "DIVERTED", "CHUTE_UNAVAILABLE", "LATE", None]
    for tracking, verdict in enumerate(verdicts, 1):
        records.decided(plc_boot=1, tracking=tracking, scan_seq=tracking, read=read,
                        decision=Decision(5, Reason.PREADVICE, "SF", "Qicun"), plan_version="p", times={})
        if verdict:
            records.confirmed(1, tracking, 5, verdict)
    records.flush()
    # the first two are from ten minutes ago (settled), the others from now
    records.db.execute("UPDATE parcels SET scanned_wall = ? WHERE tracking <= 2", (time.time() - 600,))
    reader = RecordsReader(records.path)
    try:
        for _ in range(3):     # ticks after the first read settled rows from the cache
            failures, _ = reader._plc_failures_and_actions(0.0)
            assert failures == {"LATE": 2, "CHUTE_UNAVAILABLE": 1}
        records.confirmed(1, 5, 24, "LATE")        # a verdict arriving for a recent parcel
        records.flush()
        assert reader._plc_failures_and_actions(0.0)[0] == {"LATE": 3, "CHUTE_UNAVAILABLE": 1}
    finally:
        reader.close()
        records.close()


async def test_metrics_are_served_for_prometheus(line):
    controller, _, _, http, _ = line
    controller.metrics.parcels.inc("PREADVICE")
    async with http.get("/metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        text = await resp.text()
    assert 'sortline_parcels_total{reason="PREADVICE"} 1.0' in text
    assert "sortline_plc_link_up 1.0" in text
    assert "# TYPE sortline_stage_seconds histogram" in text
    assert re.search(r"^sortline_label_reads_hedged_total \d+", text, re.M)
    assert "\nsortline_label_reader_restarts_total 0.0\n" in text
    # The screen's own figures are in the same registry, and so on the address Prometheus scrapes.
    assert "# TYPE sortline_screen_connections_refused_total counter" in text
    assert "\nsortline_screen_connections_open " in text
