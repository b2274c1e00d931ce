"""The child process that builds a plan for plan_build_process.py (which starts it and calls
main([FD])).

FD is its end of a socket pair. It reads the request (a pickle of (path, n_chutes)) until the
parent shuts its side for writing, builds the plan exactly as load_plan does in a process,
writes the plan's big arrays into a memfd (anonymous shared memory, freed by the kernel when
both sides have closed it, whichever dies first), and answers:

    16 bytes  header length, body length (unsigned 64-bit, big-endian); the memfd rides along
    header    pickle: {"ok": True, "pieces": [(path, how, length, buffers)], "buffers": [(offset, length)]}
              or {"ok": False, "error": the exception, "traceback": its text}
    body      the pieces' pickles, one after another

The child runs at a lower priority (nice BUILD_NICE, set before it imports anything) so that
the controller's event loop gets a CPU first, and volunteers for the out-of-memory killer
before the controller.
"""
import os
import pickle
import socket
import struct
import traceback

from . import plan_pieces
from .errors import PlanError
from .plan import load_plan

BUILD_NICE = 10
OOM_SCORE_ADJ = 500
FRAME = struct.Struct("!QQ")
ALIGN = 64


def _volunteer_for_the_oom_killer():
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(OOM_SCORE_ADJ))
    except OSError:
        pass                     # not Linux, or not allowed


def _read_request(sock):
    data = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return pickle.loads(bytes(data))
        data += chunk


def _write_segment(buffers):
    """A memfd holding every buffer at an aligned offset; (fd, [(offset, length)])."""
    fd = os.memfd_create("sortline-plan", os.MFD_CLOEXEC)
    placed, offset = [], 0
    for buffer in buffers:
        raw = buffer.raw()
        placed.append((offset, raw.nbytes))
        written = 0
        while written < raw.nbytes:
            written += os.pwrite(fd, raw[written:], offset + written)
        offset += -(-raw.nbytes // ALIGN) * ALIGN
    os.ftruncate(fd, offset)
    return fd, placed


def _answer(sock, header, body=b"", fds=()):
    head = pickle.dumps(header, protocol=5)
    socket.send_fds(sock, [FRAME.pack(len(head), len(body))], list(fds))
    sock.sendall(head)
    if body:
        sock.sendall(body)


def serve(sock):
    path, n_chutes = _read_request(sock)
    try:
        plan = load_plan(path, n_chutes)
        pieces, buffers = plan_pieces.pack(plan)
        fd, placed = _write_segment(buffers)
    except PlanError as exc:
        _answer(sock, {"ok": False, "error": exc, "traceback": None})
        return
    except Exception as exc:         # a fault of the build itself (memory, a bug): reported, not hidden
        text = traceback.format_exc()
        try:
            pickle.dumps(exc)
        except Exception:            # one that does not pickle travels as text
            exc = RuntimeError(text.strip().splitlines()[-1])
        _answer(sock, {"ok": False, "error": exc, "traceback": text})
        return
    header = {"ok": True, "pieces": [(p.path, p.how, len(p.data), p.buffers) for p in pieces], "buffers": placed}
    try:
        _answer(sock, header, b"".join(p.data for p in pieces), fds=[fd])
    finally:
        os.close(fd)


def main(argv):
    """Run by plan_build_process.py at priority nice BUILD_NICE."""
    _volunteer_for_the_oom_killer()
    with socket.socket(fileno=int(argv[0])) as sock:
        try:
            serve(sock)
        except (BrokenPipeError, ConnectionResetError):
            return 1             # the parent gave the build up and closed its end
    return 0
