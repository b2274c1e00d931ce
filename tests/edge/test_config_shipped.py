"""Every line config shipped in configs/ loads, passes `sortline check-config` and sorts a short shift."""
import subprocess
import sys

import pytest

from edge.config import load_config
from tests.conftest import REPO
from tests.edge.shift_runner import private_copy, run_shift

SHIPPED = sorted((REPO / "configs").glob("*.toml"))

pytestmark = pytest.mark.timeout(240)


def test_there_are_shipped_line_configs():
    assert len(SHIPPED) >= 2, SHIPPED


@pytest.mark.parametrize("config_path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_check_config_accepts_it(config_path):
    done = subprocess.run([sys.executable, "-m", "edge.cli", "check-config", str(config_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{config_path}: OK\n")
    assert "ms left" in done.stdout and "pre-advice records" in done.stdout


@pytest.mark.parametrize("config_path", SHIPPED, ids=[p.name for p in SHIPPED])
async def test_a_short_shift_sorts_every_parcel(tmp_path, config_path):
    path = private_copy(config_path, tmp_path)
    report, rows, controller, _ = await run_shift(path, parcels=30, rate_per_h=12000, seed=3)
    assert report["lost"] == 0 and report["landed"] == 30, report["by_reason"]
    assert report["late"] == 0, report["by_reason"]
    assert len(rows) == 30
    assert {version for *_, version, _ in rows} == {controller.plan.version}
    chutes = {c.number for c in load_config(path).geometry.chutes}
    assert {chute for _, _, chute, *_ in rows} <= chutes
    assert {r["actual"] for r in report["records"]} <= chutes
