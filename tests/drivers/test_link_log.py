"""What the link tells the log when it comes up: the numbering of the PLC boot it has just reached."""
import logging

import pytest

from tests.sim_plc.helpers import until

from .peers import events_of, linked, sim_plc

pytestmark = [pytest.mark.timeout(30), pytest.mark.asyncio(loop_scope="session")]


def link_up_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sortline.link" and "PLC link up" in r.getMessage()]


async def test_link_up_names_the_boot_just_reached_after_a_plc_restart(protocol, opcua_server, caplog):
    caplog.set_level(logging.INFO, logger="sortline.link")
    async with sim_plc(protocol, opcua_server, boot_id=40) as (plc, port), linked(protocol, port) as link:
        from drivers import ScanEvent
        model = plc.model
        for _ in range(3):
            model.scan()
        assert len(await events_of(link, ScanEvent, 0.5)) == 3
        assert link_up_lines(caplog)[-1].endswith("boot id 40, scan seq 0")
        # The PLC restarts, and two parcels pass its photo-eye before the link is back.
        for server in plc.servers:
            await server.stop()
        model.power_off()
        model.power_on()
        model.scan()
        model.scan()
        for server in plc.servers:
            await server.start()
        await until(lambda: len(link_up_lines(caplog)) == 2, 5.0)
        assert link_up_lines(caplog)[-1].endswith("boot id 41, scan seq 2")
        assert [e.seq for e in await events_of(link, ScanEvent, 0.5)] == [1, 2]
