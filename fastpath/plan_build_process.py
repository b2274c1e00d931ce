"""Building a plan in a child process, so that the process that uses it never runs the build.

Parsing the plan file (tomllib is pure Python), checking it and building the pre-advice table
take seconds for millions of records. In a thread of the controller, every stretch of that
work holding the GIL would delay the event loop, and on a busy machine the OS may take the
CPU away from the build in the middle of such a stretch, for milliseconds. In a child process
(plan_build_child.py) nothing of it touches this interpreter: the worker thread here sleeps until
the child answers, takes the finished tables from shared memory (mapped, or copied in one
system call with the GIL released) and the plan's Python parts are put back together on the
event loop in steps of a tenth of a millisecond (plan_pieces.py, offloop_build.py).

The worker wakes up as few times as it can: whenever it needs the GIL back, the loop may have
to hand it over and wait until the worker gets a CPU. So it never polls (a give-up wakes it
through a pipe), and it copies every table in one system call into one allocation.

Big tables are copied into this process's own memory rather than used in the shared mapping:
shared memory comes in 4 KB pages, private memory in 2 MB huge pages, and lookups in a 160 MB
table run about 1.3x faster with huge pages.
"""
import os
import pickle
import select
import socket
import subprocess
import sys
import time

from . import mapped_arrays
from . import plan_pieces
from .plan_build_child import BUILD_NICE, FRAME

COPY_MIN_BYTES = 32 << 20

# The child steps aside before it imports anything (numpy and the package take a few hundred
# milliseconds of CPU), then imports this very package, wherever this process imported it from.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CHILD_MAIN = ("import os, sys; os.nice(int(sys.argv[1])); sys.path.insert(0, sys.argv[2]); "
               "from fastpath.plan_build_child import main; sys.exit(main(sys.argv[3:]))")


def available():
    """Whether plans can be built in a child process here (Linux: memfd and descriptor passing)."""
    return hasattr(os, "memfd_create") and hasattr(socket, "send_fds") and bool(sys.executable)


def load(path, n_chutes, offloop=None, timeout_s=None):
    """load_plan(path, n_chutes) run in a child process; same Plan, same PlanError.

    `offloop`: the OffLoopBuild this load serves (offloop_build.py): giving it up stops the
    child, and the plan is put back together on its loop. None: waited for and put back
    together in the calling thread.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    ours, theirs = socket.socketpair()
    with ours:
        try:
            child = subprocess.Popen([sys.executable, "-c", _CHILD_MAIN, str(BUILD_NICE), _PACKAGE_ROOT,
                                      str(theirs.fileno())],
                                     pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, start_new_session=True)
        finally:
            theirs.close()
        try:
            try:
                ours.sendall(pickle.dumps((path, n_chutes), protocol=5))
                ours.shutdown(socket.SHUT_WR)
                header, body, segment = _receive(ours, child, offloop, deadline)
            except (BrokenPipeError, ConnectionResetError):
                raise _ended(child) from None
        except BaseException:
            child.kill()
            child.wait()
            raise
    try:
        if not header["ok"]:
            error = header["error"]
            if header["traceback"]:
                error.add_note("in the plan build process:\n" + header["traceback"])
            raise error
        buffers = _tables(segment, header["buffers"])
    finally:
        if segment is not None:
            os.close(segment)
        child.wait()             # it exits once it has answered: one wake-up, no polling
    plan, steps = plan_pieces.unpack(_pieces(header["pieces"], body), buffers)
    if offloop is None:
        for _ in steps:
            pass
    else:
        offloop.run_steps(steps)
    return plan


def _pieces(placed, body):
    """The pieces, made one at a time as the steps on the loop take them: views of the body,
    nothing copied. Not made here in the worker thread: while it holds the interpreter lock and
    the OS gives its CPU to another process, the loop waits (a 16 MB plan has 2,000 pieces)."""
    at = 0
    for piece_path, how, length, n_buffers in placed:
        yield plan_pieces.Piece(piece_path, how, body[at:at + length], n_buffers)
        at += length


def _wait_readable(sock, offloop, deadline):
    waiting = [sock] if offloop is None else [sock, offloop.wake_fd]
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    ready, _, _ = select.select(waiting, [], [], timeout)
    if offloop is not None:
        offloop.check()
    if not ready:
        raise TimeoutError("building the plan in a child process took too long")


def _receive(sock, child, offloop, deadline):
    """(header, body, memfd or None) from the child; the body is a view of what was received."""
    fds = []
    data = bytearray()
    while len(data) < FRAME.size:
        _wait_readable(sock, offloop, deadline)
        chunk, got, _, _ = socket.recv_fds(sock, FRAME.size - len(data), 1)
        if not chunk:
            raise _ended(child)
        fds += got
        data += chunk
    head_length, body_length = FRAME.unpack(data)
    rest = bytearray(head_length + body_length)
    view, at = memoryview(rest), 0
    while at < len(rest):
        _wait_readable(sock, offloop, deadline)
        got = sock.recv_into(view[at:])
        if not got:
            raise _ended(child)
        at += got
    view = memoryview(rest)
    return pickle.loads(view[:head_length]), view[head_length:], (fds[0] if fds else None)


def _ended(child):
    code = child.wait()
    how = f"was killed by signal {-code}" if code < 0 else f"ended with status {code}"
    return RuntimeError(f"the plan build process {how} before sending the plan (out of memory?); "
                        "the plan was not loaded. Its error output is in the controller's log")


def _tables(fd, placed):
    """The buffers the child wrote into the memfd, as arrays of this process.

    Small tables are used where they are, in the shared mapping: 4 KB pages cost their lookups
    nothing while the table fits the TLB's reach, and nothing is copied. Bigger ones are copied
    into huge pages, in one read with the GIL released (the child lays them out as they land).
    """
    size = placed[-1][0] + placed[-1][1] if placed else 0
    if size == 0:
        return [mapped_arrays.zeros(0, "u1") for _ in placed]
    if size < COPY_MIN_BYTES:
        source = mapped_arrays.shared(fd, size)
    else:
        source = mapped_arrays.empty(size, "u1")
        done = 0
        while done < size:
            got = os.preadv(fd, [memoryview(source)[done:]], done)
            if got <= 0:
                raise RuntimeError(f"the plan build process wrote {done} of {size} bytes of its tables")
            done += got
    return [source[offset:offset + length] for offset, length in placed]
