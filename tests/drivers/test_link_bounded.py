"""drivers.link.bounded: the await every long-lived loop of the controller goes through."""
import asyncio

import pytest

from drivers.link import bounded


async def _cancel_as_it_finishes(wait):
    """Cancel the awaiting task in the same loop turn as the awaited future gets its result."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    task = asyncio.ensure_future(wait(asyncio.shield(future), 10.0))
    await asyncio.sleep(0)                  # the task now waits on the future
    future.set_result("answer")
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return "cancelled"


async def test_a_cancellation_is_never_lost_when_the_call_finishes_at_that_moment():
    assert await _cancel_as_it_finishes(bounded) == "cancelled"


async def test_the_race_bounded_exists_for():
    # Python 3.11's wait_for returns the answer and drops the cancellation: a loop that relies on
    # being cancelled then runs on. If this starts failing, the interpreter fixed the race.
    import sys
    if sys.version_info >= (3, 12):
        pytest.skip("wait_for was rewritten in 3.12")
    assert await _cancel_as_it_finishes(asyncio.wait_for) == "answer"


async def test_a_call_past_its_time_is_cancelled_and_raises_timeout():
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow():
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        await bounded(slow(), 0.05)
    await asyncio.wait_for(cancelled.wait(), 1.0)
    assert started.is_set()


async def test_an_answer_and_an_error_come_through():
    assert await bounded(asyncio.sleep(0, "ok"), 1.0) == "ok"

    async def fails():
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError, match="peer went away"):
        await bounded(fails(), 1.0)
