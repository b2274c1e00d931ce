"""Random values in every register the PLC writes, between valid scan events (hypothesis, stateful).

The PLC is tests/edge/doc_plc.py (written from docs/plc-interface.md alone); the controller is
the real one with its records, running in a loop of its own beside hypothesis. Whatever the
registers held in between, the controller never raises, never assigns a tracking number twice,
and decides every valid event.
"""
import asyncio
import itertools
import threading

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.conftest import free_port
from tests.edge.doc_plc import CHUTE_FULL, PLC_WORDS, SCAN_RING, DocPlc
from tests.edge.test_plc_faults import controller_for
from tests.sim_plc.helpers import until

pytestmark = pytest.mark.timeout(600)

u16 = st.integers(0, 0xFFFF)
# Every register the PLC writes: the header, both rings, the chute bit fields.
plc_register = st.integers(0, PLC_WORDS - 1)


class Line:
    """A doc PLC and a running controller in a loop of their own thread."""

    def __init__(self, folder):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stop = None
        self.plc = self.controller = self.task = None
        self.call(self._start(folder), 120)

    def call(self, coro, timeout_s=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    async def _start(self, folder):
        self.plc = DocPlc(free_port())
        await self.plc.__aenter__()
        self.controller = controller_for(folder, self.plc.port)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.controller.run(self.stop))
        await until(lambda: self.controller.state.report.state.value == "running", 90)

    async def _close(self):
        self.stop.set()
        await asyncio.wait_for(self.task, 30)
        self.controller.records.close()
        await self.plc.__aexit__(None, None, None)

    def close(self):
        self.call(self._close(), 60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    line = Line(tmp_path_factory.mktemp("fuzz"))
    yield line
    line.close()


trackings = itertools.count(1000)


def test_random_plc_registers_between_valid_events_stop_no_decision(line):
    class Registers(RuleBasedStateMachine):
        @initialize()
        def begin(self):
            self.valid: list[int] = []

        @rule()
        def a_valid_scan(self):
            # A valid event stays valid until the controller has read it: garbage comes between
            # events, it does not destroy one the controller has not seen yet.
            tracking = next(trackings)
            line.call(line.plc.scan(tracking, encoder=tracking * 977))
            line.call(until(lambda: tracking in line.plc.assignments, 10.0), 15)
            self.valid.append(tracking)

        @rule(address=plc_register, values=st.lists(u16, min_size=1, max_size=12))
        def garbage(self, address, values):
            line.call(line.plc.write(address, values[:PLC_WORDS - address]))

        @rule(values=st.lists(u16, min_size=16, max_size=16))
        def garbage_chute_bits(self, values):
            line.call(line.plc.write(CHUTE_FULL, values))

        @rule()
        def a_moment(self):
            line.call(asyncio.sleep(0.02))

        @invariant()
        def never_twice(self):
            assert line.plc.refused_duplicates == 0
            assert line.controller.stats.internal_errors == 0

        def teardown(self):
            # Every valid event has its assignment, exactly once, also after what came later.
            line.call(asyncio.sleep(0.3))
            for t in self.valid:
                assert len(line.plc.assignments[t]) == 1, (t, line.plc.assignments[t])
            # A correct PLC again for the next example: the rings as they were (garbage cleared).
            line.call(line.plc.write(SCAN_RING, [0] * (PLC_WORDS - SCAN_RING)))

    Registers.TestCase.settings = settings(max_examples=25, stateful_step_count=25, deadline=None,
                                           suppress_health_check=list(HealthCheck))
    Registers.TestCase().runTest()
    assert line.controller.stats.internal_errors == 0
