"""A shift with weights: the simulated PLC and the simulated scale in their own process (`sortline sim
--scale`), the controller here, the plan's [weights] in force.

Overweight and oversize parcels reach their chutes with their reasons; every parcel's record has
the weight the scale sent before its decision; negative and absurd weighings are counted and
alarmed and those parcels are decided by their labels; the shift report gives weight per courier.
"""
import csv
import json
import re
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from edge import replay
from edge.report import main as report_main
from tests.conftest import REPO, free_port
from tests.edge.shift_runner import private_copy
from tests.sim_plc.test_code_reader_e2e import BELT, SHIFT_LIMIT_S, run_shift

PARCELS = 400
RATE = 20000
OVERWEIGHT_KG, OVERWEIGHT_CHUTE = 30, 22
OVERSIZE_MM, OVERSIZE_CHUTE = 1200, 24

pytestmark = pytest.mark.timeout(SHIFT_LIMIT_S + 120)


def weights_config(tmp_path: Path) -> Path:
    plans = REPO / "configs" / "plans"
    shutil.copy(plans / "county-24.preadvice.csv", tmp_path / "county-24.preadvice.csv")
    plan = tmp_path / "county-24.plan.toml"
    plan.write_text((plans / "county-24.plan.toml").read_text() +
                    f"\n[weights]\noverweight_kg = {OVERWEIGHT_KG}\noverweight_chute = {OVERWEIGHT_CHUTE}\n"
                    f"oversize_mm = {OVERSIZE_MM}\noversize_chute = {OVERSIZE_CHUTE}\n")
    path = private_copy(REPO / "configs" / "county-24.toml", tmp_path, plan_path=plan)
    path.write_text(path.read_text() + f'\n[scale]\nmode = "client"\nport = {free_port()}\nreconnect_max_ms = 100\n'
                                       f'weight_unit = "g"\nmax_weight_kg = 100\n')
    return path


def records(controller) -> list[dict]:
    db = sqlite3.connect(controller.config.records_folder / "parcels.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM parcels ORDER BY id")]
    finally:
        db.close()


async def test_a_shift_with_weights_sends_heavy_and_long_parcels_to_their_chutes(tmp_path, capsys):
    config = weights_config(tmp_path)
    started = datetime.now()
    report, _, controller, _ = await run_shift(
        config, PARCELS, RATE, 5, *BELT, "--camera", "all", "--scale", "--scale-heavy-share", "0.05",
        "--scale-long-share", "0.05", "--scale-negative-every", "97", "--scale-absurd-every", "131")
    sim = report["scale"]
    rows = records(controller)
    outages = report["link_outages"]       # when the simulated PLC did not answer in time (none, mostly)
    assert len(rows) == PARCELS and controller.stats.past_deadline <= outages.parcels_within(report)
    assert sim["sent"] == PARCELS and sim["heavy"] >= 8 and sim["long"] >= 8
    refused = sim["negative"] + sim["absurd"]
    assert refused == PARCELS // 97 + PARCELS // 131 - PARCELS // (97 * 131)
    # Every weighing the controller could use came before its parcel's decision, but for one or two
    # on a loaded machine: the scale counts those late (its alarm says so), their parcels go on without.
    weighed = [r for r in rows if r["weight_kg"] is not None]
    late = controller.scale.problems.get("late", 0)
    assert len(weighed) + late == PARCELS - refused and late <= 2
    assert {k: n for k, n in controller.scale.problems.items() if k != "late"} == \
        {"negative": sim["negative"], "absurd": sim["absurd"]}
    assert controller.alarms.is_active("scale_input")
    heavy = [r for r in rows if r["weight_kg"] is not None and r["weight_kg"] > OVERWEIGHT_KG]
    long = [r for r in rows if r["length_mm"] is not None and r["length_mm"] > OVERSIZE_MM and r not in heavy]
    assert sim["heavy"] - late <= len(heavy) <= sim["heavy"] and sim["long"] - late <= len(long) <= sim["long"]
    # Each reaches its chute, but for a parcel the PLC sent to the end chute while its link was down.
    assert not outages.late_outside(report), (outages.late_outside(report)[:3], outages.windows)
    plc_saw = {r["tracking"]: r for r in report["records"]}
    end_chuted = {t for t, r in plc_saw.items() if r["result"] in ("LATE", "NO_HEARTBEAT")}
    for r in heavy:
        assert (r["reason"], r["chute"]) == ("OVERWEIGHT", OVERWEIGHT_CHUTE), r
        assert r["confirmed_chute"] == OVERWEIGHT_CHUTE or r["tracking"] in end_chuted, plc_saw[r["tracking"]]
    for r in long:
        assert (r["reason"], r["chute"]) == ("OVERSIZE", OVERSIZE_CHUTE), r
        assert r["confirmed_chute"] == OVERSIZE_CHUTE or r["tracking"] in end_chuted, plc_saw[r["tracking"]]
    others = [r for r in rows if r not in heavy and r not in long]
    assert not any(r["reason"] in ("OVERWEIGHT", "OVERSIZE") for r in others)
    assert sum(r["reason"] == "PREADVICE" for r in others) > PARCELS // 3        # the rest sorted by label
    for r in weighed:
        assert r["volume_l"] == pytest.approx(r["length_mm"] * r["width_mm"] * r["height_mm"] / 1e6)

    # The shift report: weight per courier, the same sums as the records.
    out = tmp_path / "report"
    end = datetime.now()
    started = datetime.fromtimestamp(started.timestamp() - 60)
    assert report_main(["--from", started.isoformat(timespec="seconds"), "--to",
                        datetime.fromtimestamp(end.timestamp() + 60).isoformat(timespec="seconds"),
                        "--records", str(controller.config.records_folder), "--config", str(config),
                        "--out", str(out)]) == 0
    with open(out / "couriers.csv", encoding="utf-8-sig") as f:
        per_courier = {row["courier"]: row for row in csv.DictReader(f)}
    expected: dict[str, list] = {}
    for r in rows:
        e = expected.setdefault(r["courier"] or "(none)", [0, 0, 0.0, 0, 0])
        e[0] += 1
        if r["weight_kg"] is not None:
            e[1] += 1
            e[2] += r["weight_kg"]
        e[3] += r["reason"] == "OVERWEIGHT"
        e[4] += r["reason"] == "OVERSIZE"
    assert set(per_courier) == set(expected) and len(expected) >= 3
    for name, (n, n_weighed, kg, over, big) in expected.items():
        row = per_courier[name]
        assert (int(row["parcels"]), int(row["weighed"]), int(row["overweight"]), int(row["oversize"])) == \
            (n, n_weighed, over, big), name
        assert float(row["weight_kg"]) == pytest.approx(kg, abs=0.01), name
    assert sum(int(r["overweight"]) for r in per_courier.values()) == len(heavy)
    # The page shows the same per courier: parcels, weighed, kilograms, overweight, oversize.
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "各快递公司包裹与重量" in page
    shown = re.findall(r'<tr class="courier"><td>(.*?)</td>((?:<td class="n">[^<]*</td>)+)</tr>', page)
    cells = {name: re.findall(r'<td class="n">([^<]*)</td>', row) for name, row in shown}
    assert len(cells) == len(expected)
    for name, (n, n_weighed, kg, over, big) in expected.items():
        label = name if name != "(none)" else next(k for k in cells if "No courier read" in k)
        row = cells[label]
        assert (int(row[0]), int(row[1]), int(row[5]), int(row[6])) == (n, n_weighed, over, big), name
        assert float(row[2]) == pytest.approx(kg, abs=0.01), name

    # `sortline replay` with the plan that was used decides every parcel as recorded, weights included;
    # without the [weights] rule it would differ on exactly the heavy and long parcels.
    capsys.readouterr()
    span = ["--from", "2000-01-01T00:00", "--to", "2100-01-01T00:00"]
    assert replay.main(["--config", str(config), *span, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["parcels"] == PARCELS and result["check"]["differs"] == 0 and result["differences"] == []
    plan = tmp_path / "county-24.plan.toml"
    plan.write_text(plan.read_text().split("\n[weights]\n")[0] + "\n")
    assert replay.main(["--config", str(config), *span, "--json"]) == 1          # 1: some differ
    result = json.loads(capsys.readouterr().out)
    assert result["check"]["differs"] == len(heavy) + len(long)
