"""Deadlines run on the monotonic clock: a wall clock set back or forward mid-shift (NTP, a
technician) moves no deadline and loses no record. Real controller, simulated PLC and camera."""
import asyncio
import sqlite3
import time

import pytest

from tests.conftest import REPO
from tests.edge.shift_runner import private_copy, run_shift

pytestmark = pytest.mark.timeout(240)


async def test_a_wall_clock_that_jumps_mid_shift_makes_no_parcel_late(tmp_path, monkeypatch):
    real_time = time.time
    offset = [0.0]
    monkeypatch.setattr(time, "time", lambda: real_time() + offset[0])

    async def jump(controller):
        while controller.stats.scans < 15:
            await asyncio.sleep(0.02)
        offset[0] = -3600.0                                  # set back an hour
        while controller.stats.scans < 30:
            await asyncio.sleep(0.02)
        offset[0] = 3600.0                                   # and forward an hour past the true time
        return controller.stats.scans
    config = private_copy(REPO / "configs" / "county-24.toml", tmp_path)
    report, rows, _, scans_at_last_jump = await run_shift(config, 45, 12000, 5, jump)
    assert scans_at_last_jump < 45                           # both jumps came mid-shift
    assert report["lost"] == 0 and report["late"] == 0
    assert len(rows) == 45 and len({tracking for _, tracking, *_ in rows}) == 45
    # The records carry the wall clock as it was told (the jumps show there, and only there).
    db = sqlite3.connect(tmp_path / "rec" / "parcels.sqlite")
    walls = [w for (w,) in db.execute("SELECT scanned_wall FROM parcels ORDER BY id")]
    db.close()
    assert max(walls) - min(walls) > 7000 and any(b < a - 3000 for a, b in zip(walls, walls[1:]))
