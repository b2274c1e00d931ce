"""drivers.timed_awaits: the awaits every long-lived loop of the controller and the PLC links go through."""
import asyncio

import pytest

from drivers.timed_awaits import bounded


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


async def _answer_while_the_loop_is_held(wait):
    """A peer answers over a real socket 50 ms into a 200 ms wait; this process's loop is held from
    20 ms to 350 ms (past the deadline), so the answer lies unread until the timer is due too."""
    import socket
    import threading
    import time
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    threading.Timer(0.05, lambda: theirs.sendall(b"answer\n")).start()
    loop = asyncio.get_running_loop()
    loop.call_later(0.02, time.sleep, 0.33)

    async def request():
        answer = await reader.readline()
        for _ in range(3):                 # a protocol library hands the answer on through futures
            await asyncio.sleep(0)
        return answer
    try:
        return await wait(request(), 0.2)
    finally:
        writer.close()
        theirs.close()


async def test_an_answer_that_came_while_this_process_was_held_is_taken():
    from drivers.timed_awaits import answered
    assert await _answer_while_the_loop_is_held(answered) == b"answer\n"


async def test_bounded_alone_would_call_that_answer_missing():
    # The case `answered` exists for: the timer runs before the data's task wakes up.
    with pytest.raises(TimeoutError):
        await _answer_while_the_loop_is_held(bounded)


async def test_a_peer_that_stays_silent_still_times_out():
    from drivers.timed_awaits import answered
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await answered(asyncio.sleep(5), 0.1)
    assert 0.09 < loop.time() - started < 0.3
    loop.call_later(0.01, __import__("time").sleep, 0.3)   # held past the deadline: extended once, then silent
    started = loop.time()
    with pytest.raises(TimeoutError):
        await answered(asyncio.sleep(5), 0.1)
    assert loop.time() - started < 0.6


async def test_cancel_and_wait_ends_every_task_and_keeps_the_callers_cancellation():
    from drivers.timed_awaits import cancel_and_wait

    async def failing():
        await asyncio.sleep(0.01)
        raise RuntimeError("a failure nobody retrieves")

    async def stubborn():
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                await asyncio.sleep(0.5)          # ends its own way, later than the caller waits
                return
    failed = asyncio.create_task(failing())
    await asyncio.sleep(0.05)
    slow, quick = asyncio.create_task(stubborn()), asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0)
    pending = await cancel_and_wait([failed, quick, slow, None], timeout_s=0.1)
    assert pending == {slow} and quick.cancelled() and failed.done()
    await asyncio.sleep(0.5)
    assert slow.done()

    waiter = asyncio.create_task(cancel_and_wait([asyncio.create_task(stubborn())], timeout_s=5))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0.6)                      # the stubborn task ends before the loop closes
