"""Building a plan in a child process, so that the process that uses it never runs the build.

Parsing the plan file (tomllib is pure Python), checking it and building the pre-advice table
take seconds for millions of records. In a thread of the controller, every stretch of that
work holding the GIL would delay the event loop, and on a busy machine the OS may take the
CPU away from the build in the middle of such a stretch, for milliseconds. In a child process
(plan_child.py) nothing of it touches this interpreter: the worker thread here only waits on a
socket and copies the finished table out of shared memory with the GIL released, and the
plan's Python parts are put back together in steps of a tenth of a millisecond
(plan_transfer.py, beside_loop.py).

The table is copied once into this process's own memory rather than used in the shared
mapping: shared memory comes in 4 KB pages, private memory in 2 MB huge pages, and lookups in
a 160 MB table run about 1.5x faster with huge pages.
"""
import os
import pickle
import socket
import subprocess
import sys
import threading
import time

from . import beside_loop
from . import big_arrays
from . import plan_transfer
from .plan_child import FRAME

REAP_TIMEOUT_S = 10.0
# The child imports this very package, wherever this process imported it from.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CHILD_MAIN = ("import sys; sys.path.insert(0, sys.argv[1]); from fastpath.plan_child import main; "
               "sys.exit(main(sys.argv[2:]))")
COPY_NICE = 10


def available():
    """Whether plans can be built apart here (Linux: memfd and descriptor passing)."""
    return hasattr(os, "memfd_create") and hasattr(socket, "send_fds") and bool(sys.executable)


def load(path, n_chutes, timeout_s=None):
    """load_plan(path, n_chutes) run in a child process; same Plan, same PlanError."""
    beside = beside_loop.current() or beside_loop.BesideLoop(None)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    ours, theirs = socket.socketpair()
    with ours:
        try:
            child = subprocess.Popen([sys.executable, "-c", _CHILD_MAIN, _PACKAGE_ROOT, str(theirs.fileno())],
                                     pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, start_new_session=True)
        finally:
            theirs.close()
        try:
            try:
                ours.sendall(pickle.dumps((path, n_chutes), protocol=5))
                ours.shutdown(socket.SHUT_WR)
                header, body, segment = _receive(ours, child, beside, deadline)
            except (BrokenPipeError, ConnectionResetError):
                raise _ended(child) from None
        except BaseException:
            child.kill()
            child.wait()
            raise
    _reap(child)
    if not header["ok"]:
        error = header["error"]
        if header["traceback"]:
            error.add_note("in the plan build process:\n" + header["traceback"])
        raise error
    buffers = _copy_out_all(segment, header["buffers"], beside)
    pieces, at = [], 0
    for piece_path, how, length, n_buffers in header["pieces"]:
        pieces.append(plan_transfer.Piece(piece_path, how, body[at:at + length], n_buffers))
        at += length
    plan, steps = plan_transfer.unpack(pieces, buffers)
    beside_loop.run_steps(steps)
    return plan


def _receive(sock, child, beside, deadline):
    """(header, body, memfd or None) from the child, waiting in slices while the build is wanted."""
    sock.settimeout(beside_loop.POLL_S)
    fds = []
    data = bytearray()
    while len(data) < FRAME.size:
        _still_wanted(beside, deadline)
        try:
            chunk, got, _, _ = socket.recv_fds(sock, FRAME.size - len(data), 1)
        except TimeoutError:
            continue
        if not chunk:
            raise _ended(child)
        fds += got
        data += chunk
    head_length, body_length = FRAME.unpack(data)
    rest = _receive_exactly(sock, head_length + body_length, child, beside, deadline)
    header = pickle.loads(rest[:head_length])
    return header, rest[head_length:], (fds[0] if fds else None)


def _receive_exactly(sock, n, child, beside, deadline):
    data = bytearray(n)
    view = memoryview(data)
    at = 0
    while at < n:
        _still_wanted(beside, deadline)
        try:
            got = sock.recv_into(view[at:])
        except TimeoutError:
            continue
        if not got:
            raise _ended(child)
        at += got
    return bytes(data)


def _still_wanted(beside, deadline):
    beside.check()
    if deadline is not None and time.monotonic() > deadline:
        raise TimeoutError("building the plan in a child process took too long")


def _ended(child):
    try:
        code = child.wait(REAP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        code = None
    how = "did not answer" if code is None else (
        f"was killed by signal {-code}" if code < 0 else f"ended with status {code}")
    return RuntimeError(f"the plan build process {how} before sending the plan (out of memory?); "
                        "the plan was not loaded. Its error output is in the controller's log")


def _reap(child):
    try:
        child.wait(REAP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _copy_out_all(segment, placed, beside):
    """The tables, copied out of the memfd (which is then closed) into memory of this process.

    The copy is kernel work without the GIL (tens of milliseconds at 10 million records); a
    thread of its own runs it at a lower priority, so that it never takes a CPU the event loop
    wants.
    """
    copied, failed = [None] * len(placed), []

    def copy():
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + COPY_NICE)
        except OSError:
            pass                 # not allowed here: copy at the same priority
        try:
            for i, (offset, length) in enumerate(placed):
                copied[i] = _copy_out(segment, offset, length)
        except Exception as exc:
            failed.append(exc)
        finally:
            os.close(segment)
    worker = threading.Thread(target=copy, name="fastpath-copy", daemon=True)
    worker.start()
    while worker.is_alive():
        beside.check()
        worker.join(beside_loop.POLL_S)
    if failed:
        raise failed[0]
    return copied


def _copy_out(fd, offset, length):
    out = big_arrays.empty(length, "u1")
    view = memoryview(out)
    done = 0
    while done < length:
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise RuntimeError(f"the plan build process wrote {done} of {length} bytes of a table")
        done += got
    return out
