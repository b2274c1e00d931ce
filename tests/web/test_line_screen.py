"""The line screen in headless Chromium against a running controller and simulated PLC."""
import pytest

from edge.web.i18n import ALARMS, SORTED_REASONS, TEXT
from tests.web.conftest import UNKNOWN_ALARM

pytestmark = pytest.mark.timeout(300)


def test_the_page_updates_live_without_reloading(browser_shift):
    acted = browser_shift.acted
    assert 0 < acted["decided_first"] < acted["decided_later"]
    # The wrong token's 403 is the only failed request the browser may report.
    assert [e for e in acted["page_errors"] if not ("403" in e and e.endswith("/api/login"))] == []
    assert acted["lang"] == "zh-CN"                    # Chinese first


def test_page_counts_match_the_records(browser_shift):
    shown = browser_shift.shown["zh"]
    with browser_shift.db() as db:
        rows = db.execute("SELECT COUNT(*), SUM(sent) FROM parcels").fetchone()
        landed = dict(db.execute("SELECT confirmed_chute, COUNT(*) FROM parcels WHERE confirmed_chute IS NOT NULL "
                                 "GROUP BY confirmed_chute").fetchall())
        unsorted = dict(db.execute(f"SELECT reason, COUNT(*) FROM parcels WHERE reason NOT IN "
                                   f"({','.join('?' * len(SORTED_REASONS))}) GROUP BY reason", SORTED_REASONS))
        plc_failed = dict(db.execute(
            f"SELECT confirmed_result, COUNT(*) FROM parcels WHERE reason IN ({','.join('?' * len(SORTED_REASONS))})"
            " AND confirmed_result IS NOT NULL AND confirmed_result != 'DIVERTED' GROUP BY confirmed_result",
            SORTED_REASONS))
    assert rows[0] == shown["decided"] == shown["scans"] == browser_shift.sim_report["parcels"]
    assert rows[1] == shown["sent"]
    assert {int(c): v["landed"] for c, v in shown["chutes"].items() if v["landed"]} == landed
    assert {r: v["n"] for r, v in shown["rejects"].items()} == {**unsorted, **plc_failed}
    assert shown["chutes"][str(browser_shift.chute)]["state"] == "disabled"


def test_both_languages_show_the_same_counts(browser_shift):
    zh, en = browser_shift.shown["zh"], browser_shift.shown["en"]
    assert (zh["title"], en["title"]) == TEXT["read_rate"]
    assert {k: zh[k] for k in ("scans", "decided", "sent")} == {k: en[k] for k in ("scans", "decided", "sent")}
    for reason in zh["rejects"]:
        assert zh["rejects"][reason]["label"] != en["rejects"][reason]["label"]


def test_after_the_shift_the_lost_plc_is_shown_with_its_remedy(browser_shift):
    # The simulated PLC has exited: the page must say so, in words a technician can act on.
    en = browser_shift.shown["en"]
    assert en["state"] == "PLC link lost"
    assert any("Check the cable and power of the PLC" in b for b in en["banners"]), en["banners"]
    assert any("PLC 连接中断" in b for b in browser_shift.shown["zh"]["banners"])


def test_alarms_are_shown_under_the_state_in_the_readers_language(browser_shift):
    zh = {a["key"]: a for a in browser_shift.shown["zh"]["alarms"]}
    en = {a["key"]: a for a in browser_shift.shown["en"]["alarms"]}
    assert (zh["screen_connections"]["title"], en["screen_connections"]["title"]) == ALARMS["screen_connections"]
    # The controller's cause and remedy stay as it wrote them, with since when and how often.
    assert "refused connections" in zh["screen_connections"]["text"] and "共" in zh["screen_connections"]["text"]
    assert "times" in en["screen_connections"]["text"]
    assert zh[UNKNOWN_ALARM]["title"] == UNKNOWN_ALARM and "smoke detector 2" in zh[UNKNOWN_ALARM]["text"]
    assert all(a["below_state"] for a in zh.values())


def test_a_wrong_token_is_refused(browser_shift):
    acted = browser_shift.acted
    assert acted["bad_login_status"] == 403
    assert acted["bad_login_text"].startswith(TEXT["bad_token"][0])
    assert acted["actions_visible_after_bad"] is False
    with browser_shift.db() as db:
        refused = db.execute("SELECT who, detail FROM actions WHERE action = 'screen login refused'").fetchall()
    assert [who for who, _ in refused] == ["王工"]


def test_disabling_a_chute_on_the_page_reaches_the_plc_and_moves_its_parcels(browser_shift):
    s = browser_shift
    assert s.acted["good_login_status"] == 200 and s.acted["who"].endswith("王工")
    assert s.acted["disable_status"] == 200, s.acted["toast"]
    assert s.acted["toast"] == f"停用格口 {s.chute}: 已完成"
    assert s.chute in s.plc_disabled                 # the simulated PLC itself holds it disabled
    with s.db() as db:
        (at_wall, who), = db.execute("SELECT at_wall, who FROM actions WHERE action = 'disable chute' "
                                     "AND detail = ?", (str(s.chute),)).fetchall()
        after = db.execute("SELECT tracking, chute, confirmed_chute FROM parcels WHERE destination = ? "
                           "AND scanned_wall > ?", (s.destination, at_wall)).fetchall()
        into_chute_after = db.execute("SELECT COUNT(*) FROM parcels WHERE confirmed_chute = ? AND scanned_wall > ?",
                                      (s.chute, at_wall)).fetchone()[0]
    assert who == "王工"
    assert after, f"no parcel for {s.destination} after the chute was disabled: lengthen the shift"
    assert all(chute == s.next_chute and confirmed == s.next_chute for _, chute, confirmed in after), after
    assert into_chute_after == 0
    truth = {r["tracking"]: r for r in s.sim_report["records"]}
    assert all(truth[tracking]["actual"] == s.next_chute for tracking, _, _ in after)


def test_label_thumbnails_are_served_downscaled(browser_shift):
    thumbs = [t for t in browser_shift.acted["thumbs"] if t["w"]]
    assert thumbs and all(t["w"] <= 320 for t in thumbs)


def test_a_screenshot_is_produced(browser_shift):
    for shot in (browser_shift.screenshot, browser_shift.screenshot_after):
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
