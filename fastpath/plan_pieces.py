"""A built Plan cut into pieces that cross from one process to another, and put back together.

The big numpy arrays (the pre-advice table) travel out of band, as raw bytes (protocol 5
pickles hand them over apart). Everything else is cut into pickles of at most PIECE_BYTES,
long lists and dicts in several chunks, so that the receiving side can put the plan back
together in steps of about a tenth of a millisecond each: the event loop takes them between
two parcels. The courier formats' regular expressions are compiled one per step too.
"""
import dataclasses
import pickle

from .plan import Plan

PIECE_BYTES = 4 * 1024
OUT_OF_BAND_MIN_BYTES = 4 * 1024


@dataclasses.dataclass
class Piece:
    path: tuple            # attribute path from the plan: ("routing_codes",), ("preadvice", "slow")
    how: str               # "set", "extend" (list chunk) or "update" (dict chunk)
    data: bytes            # the pickle
    buffers: int           # out-of-band buffers it takes, in order


class _Packer:
    def __init__(self):
        self.pieces = []
        self.buffers = []

    def dump(self, path, how, value):
        found = []

        def out_of_band(buffer):
            if buffer.raw().nbytes < OUT_OF_BAND_MIN_BYTES:
                return True            # small arrays stay inside the pickle
            found.append(buffer)
            return False
        data = pickle.dumps(value, protocol=5, buffer_callback=out_of_band)
        self.buffers.extend(found)
        self.pieces.append(Piece(path, how, data, len(found)))
        return data

    def add(self, path, value):
        if not isinstance(value, (list, dict)) or len(value) < 2:
            self.dump(path, "set", value)
            return
        whole = pickle.dumps(value, protocol=5)
        if len(whole) <= PIECE_BYTES:
            self.dump(path, "set", value)
            return
        items = list(value.items()) if isinstance(value, dict) else value
        size = max(1, len(items) * PIECE_BYTES // len(whole))
        self.dump(path, "set", type(value)())
        for at in range(0, len(items), size):
            chunk = items[at:at + size]
            if isinstance(value, dict):
                self.dump(path, "update", dict(chunk))
            else:
                self.dump(path, "extend", chunk)


def pack(plan):
    """(pieces, buffers): the buffers are PickleBuffers of the plan's big arrays."""
    packer = _Packer()
    for name, value in vars(plan).items():
        if name == "preadvice":
            # Waybills that do not fit a 64-bit code sit in a dict, which may be long.
            packer.add((name,), dataclasses.replace(value, slow={}))
            packer.add((name, "slow"), value.slow)
        else:
            packer.add((name,), value)
    return packer.pieces, packer.buffers


def unpack(pieces, buffers):
    """(plan, steps): the plan is whole once every step of the iterator `steps` has run.

    `buffers` are the out-of-band buffers in order (any objects with the buffer protocol,
    used without copying).
    """
    plan = Plan.__new__(Plan)

    def steps():
        at = 0
        for piece in pieces:
            value = pickle.loads(piece.data, buffers=buffers[at:at + piece.buffers])
            at += piece.buffers
            _put(plan, piece.path, piece.how, value)
            yield
        table = plan.courier_table
        while table.compile_next():
            yield
    return plan, steps()


def _put(plan, path, how, value):
    target = plan
    for name in path[:-1]:
        target = getattr(target, name)
    if how == "set":
        setattr(target, path[-1], value)
    elif how == "extend":
        getattr(target, path[-1]).extend(value)
    else:
        getattr(target, path[-1]).update(value)
