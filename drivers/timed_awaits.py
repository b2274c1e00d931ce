"""Awaiting with a time limit, and cancelling, without losing a cancellation or an answer.

Used by the PLC links and by the controller's own long-lived loops (readers, reload, screen).
"""
import asyncio

OWN_STALL_S = 0.01               # a timer this late means this loop, not the peer, was busy


async def bounded(coro, timeout_s: float):
    """Await a protocol library call in its own task, for at most `timeout_s` (TimeoutError after).

    Python 3.11's asyncio.wait_for can lose a cancellation when the awaited call completes at the
    same moment, and both pymodbus and asyncua use it inside; asyncua also ignores CancelledError
    when it closes a session. Awaiting the call through asyncio.wait keeps this task's own timeouts
    and cancellation exact, whatever the library does inside.
    """
    task = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except asyncio.CancelledError:
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        raise TimeoutError
    return task.result()


async def answered(coro, timeout_s: float):
    """`bounded` for a request to a peer (the PLC): it gets `timeout_s` of this process's attention.

    When this event loop itself was held past the deadline (a long garbage collection, a burst of
    other work, a starved CPU), the answer may be lying unread in the socket: the timer and the
    data wake up in the same loop turn and the timer runs first. Such a wait is extended by the
    time the loop was late, once and at most by `timeout_s`, so that only the peer's silence counts
    as silence; the loop's own holds are measured and alarmed by edge/loop_watch.py.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)
    started = loop.time()
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        late_s = loop.time() - started - timeout_s
        if not done and late_s > OWN_STALL_S:
            done, _ = await asyncio.wait({task}, timeout=min(late_s, timeout_s))
    except asyncio.CancelledError:
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        raise TimeoutError
    return task.result()


async def cancel_and_wait(tasks, timeout_s: float | None = None) -> set:
    """Cancel `tasks` and wait until they have ended (at most `timeout_s`); returns those still
    running. Their outcomes are consumed (nothing is logged as "never retrieved"), and a
    cancellation of the caller itself goes on."""
    tasks = [t for t in tasks if t is not None]
    for task in tasks:
        task.cancel()
    if not tasks:
        return set()
    done, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in done:
        _consume(task)
    return pending


def _abandon(task: asyncio.Task) -> None:
    task.cancel()
    task.add_done_callback(_consume)


def _consume(task: asyncio.Task) -> None:
    """An abandoned call ends on its own (its connection is dropped); its outcome no longer matters."""
    if not task.cancelled():
        task.exception()
