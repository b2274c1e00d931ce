"""The manual coding table: its server against a real controller and simulated PLC, and the page
in headless Chromium typed into as a USB handheld scanner types (characters, then Enter)."""
import asyncio
import json
import os
import shutil

import aiohttp
import numpy as np
import pytest

from edge.web import coding
from edge.web.i18n import REASONS, TEXT
from fastpath import Reason, Router
from tests.conftest import REPO
from tests.web.conftest import ARTIFACTS, CHROMIUM, browser_missing, running_line
from vision.result import LabelRead
from vision.waybill import random_waybill

pytestmark = pytest.mark.timeout(120)

TOKEN = "coding-token-for-tests-0003"
PREADVISED, PREADVISED_TO = "4923232124077", "Yanzhao"         # from configs/plans/county-24.preadvice.csv
NO_COURIER = "20261207"                                         # an order number: no courier's shape
LABEL_IMAGE = REPO / "tests" / "vision" / "real_labels" / "sto-polybag-photo.jpg"


def waybill_of(courier: str, plan, seed: int = 7) -> str:
    """A number in `courier`'s format that the plan's pre-advice does not list."""
    rng = np.random.default_rng(seed)
    while True:
        w = random_waybill(rng, courier)
        if plan.preadvice_destination(w) is None:
            return w


@pytest.fixture
async def line(tmp_path):
    async with running_line(tmp_path, f"{TOKEN}\n") as (controller, model, screen, plans):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{screen.port}", cookie_jar=jar,
                                         timeout=aiohttp.ClientTimeout(total=10)) as http:
            yield controller, screen, http, plans


async def scan(http, waybill, headers=None):
    async with http.post("/api/coding/scan", json={"waybill": waybill}, headers=headers or {}) as r:
        return r.status, await r.json()


async def login(http):
    async with http.post("/api/login", json={"name": "王五", "token": TOKEN}) as r:
        assert r.status == 200
        return (await r.json())["csrf"]


def logbook(controller, action):
    controller.records.flush(5.0)
    return [tuple(r) for r in controller.records.db.execute(
        "SELECT who, detail FROM actions WHERE action = ? ORDER BY id", (action,))]


async def put_multi_read_parcel(controller, tracking: int, waybills: tuple[str, ...]) -> int:
    """A parcel with two labels, decided as the line decides it (multi read, end chute), recorded
    through the records' own API, its camera image in the camera's folder."""
    read = LabelRead(waybills, None, None, {"waybill": "barcode"}, 1.0)
    decision = controller.router.decide(list(waybills))
    assert decision.reason == Reason.MULTI_READ
    folder = controller.images.folder
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(LABEL_IMAGE, folder / f"{tracking}.jpg")
    committed = controller.records.decided(plc_boot=1, tracking=tracking, scan_seq=tracking, read=read,
                                           decision=decision, plan_version=controller.plan.version, times={})
    assert await asyncio.wait_for(committed, 5)
    return controller.records.db.execute("SELECT max(id) FROM parcels").fetchone()[0]


# -- the server ----------------------------------------------------------------------------------
async def test_a_preadvised_waybill_gets_a_chute_of_its_destination_and_is_logged(line):
    controller, _, http, _ = line
    status, got = await scan(http, PREADVISED)
    assert status == 200, got
    assert (got["kind"], got["destination"], got["reason"]) == ("coded", PREADVISED_TO, "PREADVICE")
    assert got["chute"] in controller.plan.group_chutes[controller.plan.destinations.index(PREADVISED_TO) + 1]
    assert got["parcel"] is None                        # no parcel of the shift read it
    who, detail = logbook(controller, coding.ACT_CODED)[-1]
    assert who == "coding table 127.0.0.1"
    assert detail == f"{PREADVISED} chute {got['chute']} {PREADVISED_TO} PREADVICE"


async def test_the_answer_is_the_routing_cores_with_the_chute_states_as_they_stand(line):
    controller, _, http, _ = line
    plan = controller.plan
    jd, sf, zto = waybill_of("JD", plan), waybill_of("SF", plan), waybill_of("ZTO", plan)
    reference = Router(plan)                            # a second core on the same plan
    for w in (PREADVISED, jd, sf, zto):
        _, got = await scan(http, w)
        want = reference.decide([w])
        assert (got["destination"], got["reason"], got["courier"]) == (want.destination, want.reason.name,
                                                                       want.courier), w
    _, got = await scan(http, jd)
    assert (got["reason"], got["destination"], got["kind"]) == ("COURIER_RULE", "Dangcheng", "coded")
    _, got = await scan(http, sf)
    assert (got["reason"], got["chute"]) == ("COURIER_OVERRIDE", 20)
    _, got = await scan(http, zto)                       # a waybill the plan has no destination for
    assert (got["kind"], got["reason"], got["chute"], got["destination"]) == ("no_rule", "NO_RULE", 23, None)
    # A chute a technician disabled is not given: the destination's other chute is, every time.
    await controller.set_chute_enabled(17, False, who="test")
    await asyncio.sleep(1.0)                             # within the brake: a person scans a few a second
    chutes = {(await scan(http, PREADVISED))[1]["chute"] for _ in range(4)}
    assert chutes == {18}


async def test_a_number_of_no_courier_is_answered_with_what_to_check_and_recorded(line):
    controller, screen, http, _ = line
    status, got = await scan(http, NO_COURIER)
    assert status == 200
    assert (got["kind"], got["chute"], got["reason"]) == ("no_courier", None, None)
    assert logbook(controller, coding.ACT_NO_COURIER)[-1] == ("coding table 127.0.0.1", NO_COURIER)
    assert screen.coding.counts["no_courier"] == 1
    async with http.get("/metrics") as r:
        assert 'sortline_coding_scans_total{outcome="no_courier"} 1.0' in await r.text()


@pytest.mark.parametrize("sent, says", [
    ("1" * 41, "41 characters"),
    ("SF1234-5678", "only letters A-Z and digits"),
    ("4923232124077\x1b[A", "only letters A-Z and digits"),
    ("   ", "empty"),
    (12345, "must be text"),
])
async def test_input_that_is_no_waybill_is_refused_counted_and_not_logged(line, sent, says):
    controller, screen, http, _ = line
    status, got = await scan(http, sent)
    assert status == 400 and got["error"] == "bad_waybill" and says in got["detail"], got
    assert screen.coding.counts["bad_input"] == 1
    assert logbook(controller, coding.ACT_CODED) == []


async def test_an_oversized_body_is_refused_before_it_is_read(line):
    _, _, http, _ = line
    async with http.post("/api/coding/scan", json={"waybill": "1" * 10_000}) as r:
        assert r.status == 413


async def test_a_flood_of_scans_is_braked_and_counted_and_the_others_still_answered(line):
    controller, screen, http, _ = line
    answers = [(await scan(http, PREADVISED))[0] for _ in range(coding.SCAN_BURST + 15)]
    assert answers[:coding.SCAN_BURST] == [200] * coding.SCAN_BURST
    refused = answers.count(429)
    assert refused >= 10 and screen.coding.counts["too_fast"] == refused
    assert len(logbook(controller, coding.ACT_CODED)) == answers.count(200)
    await asyncio.sleep(1.0)                             # a person's pace again
    assert (await scan(http, PREADVISED))[0] == 200


async def test_a_page_from_elsewhere_cannot_code(line):
    controller, _, http, _ = line
    status, got = await scan(http, PREADVISED, headers={"Origin": "http://evil.example"})
    assert status == 403 and got["error"] == "csrf"
    async with http.post("/api/coding/scan", data=json.dumps({"waybill": PREADVISED}),
                         headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 400
    assert logbook(controller, coding.ACT_CODED) == []


async def test_the_parcel_is_found_in_the_records_with_its_image(line):
    controller, _, http, _ = line
    other = waybill_of("YTO", controller.plan)
    row = await put_multi_read_parcel(controller, 4711, (PREADVISED, other))
    status, got = await scan(http, other)
    assert status == 200
    parcel = got["parcel"]
    assert (parcel["row"], parcel["tracking"], parcel["reason"], parcel["chute"]) == (row, 4711, "MULTI_READ", 24)
    assert parcel["image"] == f"/api/coding/image/{row}"
    async with http.get(parcel["image"]) as r:
        assert r.status == 200 and r.content_type == "image/jpeg"
        assert (await r.read())[:2] == b"\xff\xd8"
    assert logbook(controller, coding.ACT_CODED)[-1][1].endswith(f"parcel row {row} tracking 4711")
    async with http.get(f"/api/coding/image/{row + 1000}") as r:      # only images the table has shown
        assert r.status == 404


async def test_adding_to_the_preadvice_needs_a_technician_and_then_the_parcel_sorts_itself(line):
    controller, _, http, plans = line
    w = waybill_of("ZTO", controller.plan, seed=11)
    _, got = await scan(http, w)
    assert got["kind"] == "no_rule"
    async with http.post("/api/coding/preadvice", json={"waybill": w, "destination": "Qicun"}) as r:
        assert r.status == 403
    csrf = await login(http)
    headers = {"X-CSRF-Token": csrf}
    async with http.post("/api/coding/preadvice", json={"waybill": w, "destination": "Atlantis"},
                         headers=headers) as r:
        assert r.status == 400
    async with http.post("/api/coding/preadvice", json={"waybill": w, "destination": "Qicun"}, headers=headers) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert (body["added"], body["file"], body["reload"]) == (True, "county-24.preadvice.csv", "now")
    assert (plans / "county-24.preadvice.csv").read_text().endswith(f"\n{w},Qicun\n")
    async with asyncio.timeout(60):
        while controller.plan.preadvice_destination(w) != "Qicun":
            await asyncio.sleep(0.1)
    _, got = await scan(http, w, headers=headers)
    assert (got["kind"], got["reason"], got["destination"], got["chute"]) == ("coded", "PREADVICE", "Qicun", 7)
    assert got["who"] == "王五"
    assert logbook(controller, coding.ACT_PREADVICE) == [("王五", f"{w},Qicun in county-24.preadvice.csv")]
    async with http.post("/api/coding/preadvice", json={"waybill": w, "destination": "Qicun"}, headers=headers) as r:
        assert (await r.json())["added"] is False                     # already there: written once


async def test_beyond_this_pc_coding_needs_a_login(tmp_path):
    async with running_line(tmp_path, f"{TOKEN}\n", bind="0.0.0.0") as (controller, _, screen, _):
        async with aiohttp.ClientSession(f"http://127.0.0.1:{screen.port}", cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         timeout=aiohttp.ClientTimeout(total=10)) as http:
            status, got = await scan(http, PREADVISED)
            assert status == 403 and got["error"] == "not_logged_in"
            csrf = await login(http)
            status, got = await scan(http, PREADVISED, headers={"X-CSRF-Token": csrf})
            assert status == 200 and got["who"] == "王五"


def test_every_word_of_the_page_is_in_both_languages():
    static = REPO / "edge" / "web" / "static"
    page = "".join((static / name).read_text() for name in ("coding.html", "common.js", "coding.js"))
    import re
    keys = set(re.findall(r'data-t="([a-z_]+)"', page)) | set(re.findall(r'\bt\("([a-z_]+)"', page))
    assert keys and keys <= set(TEXT), keys - set(TEXT)
    for key in keys:
        zh, en = TEXT[key]
        assert zh and en and zh != en


# -- the page in Chromium --------------------------------------------------------------------------
async def drive(url: str, scans: list[dict], tmp_path) -> dict:
    scans_file, out_file = tmp_path / "scans.json", tmp_path / "coding.json"
    scans_file.write_text(json.dumps(scans))
    ARTIFACTS.mkdir(exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        "node", str(REPO / "tests" / "web" / "drive_coding.mjs"), url, TOKEN, str(scans_file), str(ARTIFACTS),
        str(out_file), cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SORTLINE_CHROMIUM": str(CHROMIUM)})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 100)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    assert proc.returncode == 0, (out + err).decode()[-4000:]
    return json.loads(out_file.read_text())


@pytest.mark.timeout(180)
async def test_the_page_typed_into_by_a_scanner(line, tmp_path):
    why = browser_missing()
    if why:
        pytest.skip(f"no headless browser test: {why}")
    controller, screen, _, plans = line
    plan = controller.plan
    not_in_plan = waybill_of("ZTO", plan, seed=3)
    second_label = waybill_of("YTO", plan, seed=4)
    await put_multi_read_parcel(controller, 4712, (PREADVISED, second_label))
    shown = await drive(f"http://127.0.0.1:{screen.port}/", [
        {"name": "preadvised", "waybill": PREADVISED, "shot": "coding-preadvised.png"},
        {"name": "not_in_plan", "waybill": not_in_plan, "tap_first": True, "login": True, "add_preadvice": True,
         "shot": "coding-not-in-plan.png"},
        {"name": "no_courier", "waybill": NO_COURIER, "shot": "coding-no-courier.png"},
        {"name": "bad", "waybill": "12345-678"},
        {"name": "multi_read", "waybill": second_label, "wait_image": True, "shot": "coding-image.png"},
    ], tmp_path)
    assert shown["page_errors"] == [e for e in shown["page_errors"] if "400" in e], shown["page_errors"]
    assert shown["focused_at_start"] == "waybill"
    s = shown["scans"]
    yanzhao = {str(c) for c in plan.group_chutes[plan.destinations.index(PREADVISED_TO) + 1]}
    assert s["preadvised"]["chute"] in yanzhao and s["preadvised"]["destination"] == PREADVISED_TO
    assert s["preadvised"]["reason"] == REASONS["PREADVICE"][0][0] and s["preadvised"]["lang"] == "zh-CN"
    assert s["preadvised"]["chute_px"] >= 200                    # readable from the parcel's side of the table
    assert s["preadvised"]["focused"] == "waybill"
    # Typed after a tap on a button: the characters still reached the input.
    nip = s["not_in_plan"]
    assert (nip["kind"], nip["chute"], nip["destination"]) == ("no_rule", "23", "")
    assert nip["check"] == TEXT["coding_no_rule_check"][0].format(chute=23)
    assert nip["after_add"]["note"] == TEXT["coding_added"][0].format(file="county-24.preadvice.csv")
    first_destination = plan.destinations[0]
    assert (plans / "county-24.preadvice.csv").read_text().endswith(f"\n{not_in_plan},{first_destination}\n")
    assert (s["no_courier"]["kind"], s["no_courier"]["chute"]) == ("no_courier", "?")
    assert s["no_courier"]["check"] == TEXT["coding_no_courier_check"][0]
    assert s["bad"]["kind"] == "error" and s["bad"]["check"].startswith(TEXT["bad_waybill"][0])
    mr = s["multi_read"]
    assert mr["image_shown"] and "4712" in mr["parcel_text"] and mr["focused"] == "waybill"
    for name, layout in shown["layouts"].items():
        assert layout["cut"] == [], (name, layout)
        assert layout["scroll_width"] <= layout["width"] and layout["scroll_height"] <= layout["height"], layout
        assert layout["chute_px"] >= 200, (name, layout)
    english = shown["english"]          # the plan's answer for the number, and what the line did with the parcel
    assert english["lang"] == "en" and english["reason"] == REASONS["NO_RULE"][0][1]
    assert REASONS["MULTI_READ"][0][1] in english["parcel_text"]
    records = logbook(controller, coding.ACT_CODED)
    assert [d.split()[0] for _, d in records] == [PREADVISED, not_in_plan, second_label]
    assert records[1][0] == "王五"
    assert logbook(controller, coding.ACT_NO_COURIER)[-1][1] == NO_COURIER
    assert (ARTIFACTS / "coding-portrait.png").stat().st_size > 10_000
