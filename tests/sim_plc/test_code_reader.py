"""The simulated code reader beside the simulated PLC, read by the controller's code reader input
over TCP: matched by trigger id and by time, in both framings, with its no-reads, its silence
and its noise."""
import asyncio
from types import SimpleNamespace

import pytest

from edge.alarms import Alarms
from edge.code_reader import CodeReader
from sim_plc.code_reader import ReaderSpec, SimCodeReader
from tests.conftest import free_port
from tests.edge.config_files import reader_section
from tests.sim_plc.helpers import next_event, plc_and_link

WAYBILLS = ["SF5790189238428", "YT2465008785834", "JT131491349252", "SF1111111111118"]
POLL_S = 0.002

pytestmark = pytest.mark.timeout(60)


def truth(waybill):
    """What the shift hands the PLC as a parcel's truth: its label, None when it lies label-down."""
    return SimpleNamespace(label=SimpleNamespace(truth=None if waybill is None else SimpleNamespace(waybill=waybill)))


async def run_parcels(reader_settings: dict, spec: ReaderSpec, labels: list, pitch_s: float = 0.1):
    """Scan `labels` through the simulated PLC; return each parcel's result and both sides' counts."""
    async with plc_and_link(free_port()) as (_plc, model, link):
        sim = SimCodeReader(model, reader_settings, spec)
        await sim.start()
        alarms = Alarms()
        reader = CodeReader(reader_settings, alarms)
        await reader.start()
        try:
            for _ in range(200):
                if reader.connected:
                    break
                await asyncio.sleep(0.01)
            got = []
            for waybill in labels:
                model.scan(truth(waybill))
                ev = await next_event(link)
                scanned = ev.received_s - POLL_S
                wait_s = reader_settings["wait_ms"] / 1000
                got.append(await reader.result_for(ev.tracking, scanned, scanned + wait_s))
                await asyncio.sleep(max(0.0, pitch_s - wait_s))
            reader.check()
            return got, sim.summary(), reader, alarms
        finally:
            await reader.stop()
            await sim.stop()


async def test_trigger_ids_are_tracking_numbers_with_no_reads():
    port = free_port()
    labels = [WAYBILLS[i % 4] if i % 5 else None for i in range(20)]
    got, sim, reader, _ = await run_parcels(reader_section("client", port), ReaderSpec(no_read_share=0.0), labels)
    for waybill, result in zip(labels, got):
        assert result is not None
        assert result.codes == ((waybill,) if waybill else ())
    assert sim["sent"] == 20 and sim["no_reads"] == 4
    assert sum(reader.problems.values()) == 0


async def test_time_matching_with_the_readers_own_ids_stx_etx_and_a_prefix():
    port = free_port()
    # Parcels 200 ms apart and a 100 ms window: a result is never near two scans, also on a busy machine.
    keys = reader_section("server", port, framing="stx-etx", prefix="RES:", template="{trigger};{skip};{codes}",
                          match="time", wait_ms=100.0)
    labels = [WAYBILLS[i % 4] for i in range(20)]
    got, sim, reader, _ = await run_parcels(keys, ReaderSpec(no_read_share=0.0, ids="own", seed=3), labels,
                                            pitch_s=0.2)
    assert [r.codes for r in got] == [(w,) for w in labels]
    assert all(r.trigger not in range(1, 21) for r in got)        # its own count, not the PLC's
    assert sum(reader.problems.values()) == 0


async def test_silence_and_noise_are_counted_and_alarmed():
    port = free_port()
    labels = [WAYBILLS[i % 4] for i in range(25)]
    got, sim, reader, alarms = await run_parcels(reader_section("client", port),
                                                 ReaderSpec(no_read_share=0.0, silent_after=12, garbage_every=4),
                                                 labels)
    assert all(r is not None for r in got[:12]) and all(r is None for r in got[12:])
    assert sim["withheld"] == 13 and sim["garbage"] == 3
    assert reader.problems["garbage"] == 3
    assert alarms.is_active("code_reader_silent") and alarms.is_active("code_reader_input")


def test_a_pattern_layout_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="template"):
        SimCodeReader(None, reader_section("client", 1, pattern=r"(?P<codes>.*)"))
    with pytest.raises(ValueError, match="client"):
        SimCodeReader(None, reader_section("off", 1))
