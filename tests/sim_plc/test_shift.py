"""A whole simulated shift on the shipped county line, against a controller that knows the truth.

The controller here answers from the simulator's own ground truth (it plays a perfect label
reader) and misbehaves on purpose for some parcels, so that the report's accounting can be
checked parcel by parcel. The real controller runs against the simulator in tests/e2e.
"""
import asyncio
import contextlib

import pytest

from drivers import LinkSettings, ScanEvent, open_link
from sim_plc.faults import parse_fault
from sim_plc.shift import ShiftSpec, run_shift

from .helpers import line_config

pytestmark = pytest.mark.timeout(60)

INVALID, FAULTY, SILENT = 3, 5, 7   # parcel index % 10: a chute that does not exist / a faulted one / no answer


@contextlib.asynccontextmanager
async def truth_controller(port: int, started: asyncio.Future):
    """Assigns each parcel the first chute its label belongs in, except the planned mistakes."""
    link = open_link("modbus", LinkSettings(port=port, poll_interval_s=0.002, timeout_s=0.2, heartbeat_interval_s=0.05))

    async def answer():
        while True:
            ev = await link.events.get()
            if not isinstance(ev, ScanEvent):
                continue
            parcel = plc.model.parcels.get(ev.tracking)
            if parcel is None:
                continue
            kind = parcel.truth.index % 10
            if kind == SILENT:
                continue
            chute = 99 if kind == INVALID else parcel.expected_chute[0]
            if kind == FAULTY:            # a fault commanded in-process while the shift runs
                plc.model.set_chute_fault(chute, True)
                repair = asyncio.create_task(repair_after(parcel, chute))
                repairs.add(repair)
                repair.add_done_callback(repairs.discard)
            await link.assign(ev.tracking, chute, 1)

    async def repair_after(parcel, chute):
        while parcel.result is None:
            await asyncio.sleep(0.02)
        plc.model.set_chute_fault(chute, False)

    async def connect_when_listening():
        nonlocal plc
        plc = await started
        await link.start()
        await answer()

    plc = None
    repairs = set()

    task = asyncio.create_task(connect_when_listening())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with asyncio.timeout(3.0):
            await link.stop()


async def test_a_traced_shift_with_an_estop_is_accounted_parcel_by_parcel(tmp_path, port):
    config = line_config(tmp_path, port)
    trace = tmp_path / "trace.csv"
    trace.write_text("t_s,length_mm,weight_kg\n" + "".join(f"{10 + 0.3 * i:.2f},{300 + 10 * i},{0.5 + i}\n"
                                                         for i in range(20)))
    spec = ShiftSpec(parcels=20, arrivals="trace", trace=str(trace), seed=3, no_label_share=0.1,
                     unknown_route_share=0.1, camera="off", faults=(parse_fault("10:estop:0.5"),))
    started = asyncio.get_running_loop().create_future()
    async with truth_controller(port, started):
        report = await asyncio.wait_for(run_shift(config, spec, tmp_path / "report.json", port=port,
                                                  on_started=started.set_result), 50)

    assert report["parcels"] == 20 and report["landed"] == 20 and report["lost"] == 0
    assert report["faults"][0]["fault"] == "10:estop:0.5"
    rows = {r["index"]: r for r in report["records"]}
    assert [rows[i]["weight_kg"] for i in range(3)] == [0.5, 1.5, 2.5]
    assert [rows[i]["length_mm"] for i in range(3)] == [300, 310, 320]
    for i, r in rows.items():
        if i % 10 == INVALID:
            assert (r["correct"], r["outcome"], r["result"]) == (False, "invalid_assignment", "INVALID_ASSIGNMENT")
            assert "chute 99" in r["why"] and r["refused"] == ["NO_SUCH_CHUTE"]
        elif i % 10 == FAULTY or r["outcome"] == "chute_unavailable":    # others may meet the same fault
            assert (r["outcome"], r["result"]) == ("chute_unavailable", "CHUTE_UNAVAILABLE")
            assert "faulted" in r["why"] and r["actual"] == config.geometry.end_chute
        elif i % 10 == SILENT:
            assert (r["result"], r["actual"]) == ("LATE", config.geometry.end_chute)
            assert r["outcome"] == ("ok" if r["correct"] else "late")
        else:
            assert (r["correct"], r["result"], r["outcome"]) == (True, "DIVERTED", "ok"), r
            assert abs(r["divert_error_ms"]) < 20 if r["actual"] != config.geometry.end_chute else True
    assert report["correct"] == sum(r["correct"] for r in rows.values())
    assert report["rejects"]["INVALID_ASSIGNMENT"] == 2 and report["rejects"]["LATE"] == 2
    assert report["rejects"]["CHUTE_UNAVAILABLE"] >= 2
    assert report["late"] == 2 and report["plc_refused"]["refused_chute"] == 2
    assert (tmp_path / "report.json").exists()


async def test_a_serving_only_shift_ends_when_stopped(tmp_path, port):
    config = line_config(tmp_path, port)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.5, stop.set)
    report = await asyncio.wait_for(run_shift(config, ShiftSpec(parcels=0), port=port, stop=stop), 10)
    assert report["parcels"] == 0 and report["camera"] == {}


async def test_a_shift_without_a_controller_gives_up_with_a_clear_message(tmp_path, port):
    config = line_config(tmp_path, port)
    spec = ShiftSpec(parcels=3, camera="off", wait_for_controller_s=0.3)
    with pytest.raises(TimeoutError, match="no controller heartbeat within 0 s: is `sortline run` started"):
        await asyncio.wait_for(run_shift(config, spec, port=port), 10)
