"""A chute a technician disabled stays disabled across a controller restart, in the routing
core and in the PLC, until someone enables it again. Real controller, records and simulated PLC."""
import asyncio
import logging

import pytest

from edge.run import build_controller
from edge.config import load_config
from tests.drivers.peers import sim_plc
from tests.edge.config_files import LINE, PLAN, set_keys, write
from tests.sim_plc.helpers import until

pytestmark = pytest.mark.timeout(90)


def _controller(folder, port=15020):
    return build_controller(load_config(write(folder, set_keys(LINE, {("plc", "port"): str(port)}), PLAN)))


async def test_a_disabled_chute_is_still_disabled_after_a_restart_until_enabled(tmp_path):
    first = _controller(tmp_path)
    await first.set_chute_enabled(3, False, who="Wang")
    await first.set_chute_enabled(4, False, who="Wang")
    await first.set_chute_enabled(4, True, who="Li")
    first.records.close()

    again = _controller(tmp_path)
    assert again.disabled == {3}
    again._sync_chute_state()
    assert not again.router.chute_state(3)["enabled"] and again.router.chute_state(4)["enabled"]
    assert next(c for c in again.snapshot()["chutes"] if c["number"] == 3)["disabled"]
    await again.set_chute_enabled(3, True)
    again.records.close()

    assert _controller(tmp_path).disabled == set()


async def test_a_kept_chute_that_left_the_line_is_ignored_with_a_warning(tmp_path, caplog):
    first = _controller(tmp_path)
    first.records.action("technician", "disable chute", "5")
    first.records.action("technician", "disable chute", "99")       # a chute of an earlier layout
    first.records.close()
    with caplog.at_level(logging.WARNING, logger="sortline.edge"):
        assert _controller(tmp_path).disabled == {5}
    assert "chutes [99] were left disabled but are not on this line any more" in caplog.text
    assert "chutes [5] stay disabled" in caplog.text


async def test_the_plc_gets_the_kept_disabled_chutes_when_the_controller_starts(tmp_path):
    async with sim_plc("modbus", None) as (plc, port):
        first = _controller(tmp_path, port)
        await first.set_chute_enabled(2, False)
        first.records.close()
        assert plc.model.disabled_chutes() == set()

        controller = _controller(tmp_path, port)
        stop = asyncio.Event()
        run = asyncio.create_task(controller.run(stop))
        try:
            await until(lambda: plc.model.disabled_chutes() == {2}, 30.0)
        finally:
            stop.set()
            await asyncio.wait_for(run, 30)
            controller.records.close()
