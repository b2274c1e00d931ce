"""The PLC interface, as registers: one source of truth for the simulator and the controller.

docs/plc-interface.md explains it for PLC programmers. All values are holding registers
(function codes 3 and 16). 32-bit values take two registers, high word first (big-endian
word order, "ABCD"). Addresses are 0-based protocol addresses; a technician can move the two
blocks (plc_base, edge_base) in the line config to fit the PLC's memory layout.
"""
from dataclasses import dataclass
from enum import IntEnum

INTERFACE_VERSION = 1
RING_SLOTS = 16
SLOT_WORDS = 6
CHUTE_BIT_WORDS = 8          # 128 chutes per bit field
MAX_CHUTES = CHUTE_BIT_WORDS * 16


class LineState(IntEnum):
    STOPPED = 0
    RUNNING = 1
    ESTOP = 2
    JAM = 3
    FAULT = 4


class DivertResult(IntEnum):
    """What the PLC did with a parcel, reported in a confirmation slot."""
    DIVERTED = 1             # into the assigned chute
    LATE = 2                 # no valid assignment before the decision point: end chute
    NO_HEARTBEAT = 3         # controller heartbeat lost: end chute
    CHUTE_UNAVAILABLE = 4    # assigned chute full, disabled or faulted at divert time: end chute
    INVALID_ASSIGNMENT = 5   # chute number out of range: end chute
    LOST = 6                 # tracking lost (parcel removed or jammed)


class Refusal(IntEnum):
    """Why the PLC refused the newest refused assignment (PLC_LAST_REFUSAL)."""
    NONE = 0
    UNKNOWN_TRACKING = 1     # no parcel with this tracking number is on the belt
    ALREADY_FINISHED = 2     # the parcel has already been diverted or has landed
    LATE = 3                 # the parcel has passed its decision point
    DUPLICATE = 4            # the parcel already has an assignment: the first one stands
    NO_SUCH_CHUTE = 5        # the chute number is not a chute of this line: end chute, result 5


# Offsets inside the PLC-owned block (the controller only reads these).
PLC_VERSION = 0
PLC_HEARTBEAT = 1
PLC_LINE_STATE = 2
PLC_BOOT_ID = 3
PLC_SCAN_SEQ = 4             # u32: sequence number of the newest scan event
PLC_CONFIRM_SEQ = 6          # u32: sequence number of the newest confirmation
PLC_ENCODER = 8              # u32: belt encoder counts
PLC_EDGE_HB_SEEN = 10        # last controller heartbeat value the PLC saw
PLC_FLAGS = 11               # bit 0: controller heartbeat alive
PLC_ASSIGN_TAKEN = 12        # u32: newest assignment sequence number the PLC has taken
PLC_REFUSED = 14             # count of refused assignments (wraps at 65536)
PLC_LAST_REFUSAL = 15        # Refusal code of the newest refused assignment
PLC_HEADER_WORDS = 16
PLC_SCAN_RING = 16           # RING_SLOTS x [seq hi, seq lo, tracking hi, tracking lo, encoder hi, encoder lo]
PLC_CONFIRM_RING = PLC_SCAN_RING + RING_SLOTS * SLOT_WORDS   # x [seq hi, lo, tracking hi, lo, chute, result]
PLC_CHUTE_FULL = PLC_CONFIRM_RING + RING_SLOTS * SLOT_WORDS
PLC_CHUTE_FAULT = PLC_CHUTE_FULL + CHUTE_BIT_WORDS
PLC_CHUTE_DISABLED = PLC_CHUTE_FAULT + CHUTE_BIT_WORDS
PLC_BLOCK_WORDS = PLC_CHUTE_DISABLED + CHUTE_BIT_WORDS      # 232

# Offsets inside the controller-owned block (the PLC only reads these).
EDGE_HEARTBEAT = 0
EDGE_SCAN_ACK = 1            # u32: newest scan sequence number the controller has taken
EDGE_CONFIRM_ACK = 3         # u32: newest confirmation sequence number the controller has taken
EDGE_CHUTE_DISABLE = 8       # CHUTE_BIT_WORDS: chutes the technician disabled
EDGE_ASSIGN_RING = 16        # RING_SLOTS x [aseq hi, aseq lo, tracking hi, tracking lo, chute, reason]
EDGE_BLOCK_WORDS = EDGE_ASSIGN_RING + RING_SLOTS * SLOT_WORDS  # 112

# One Modbus read carries at most 125 registers: header + scan ring is one read.
SCAN_READ_WORDS = PLC_SCAN_RING + RING_SLOTS * SLOT_WORDS    # 112


@dataclass(frozen=True)
class RegisterMap:
    plc_base: int = 0
    edge_base: int = 300

    def plc(self, offset: int) -> int:
        return self.plc_base + offset

    def edge(self, offset: int) -> int:
        return self.edge_base + offset

    def overlaps(self) -> bool:
        a0, a1 = self.plc_base, self.plc_base + PLC_BLOCK_WORDS
        b0, b1 = self.edge_base, self.edge_base + EDGE_BLOCK_WORDS
        return a0 < b1 and b0 < a1


def split_u32(value: int) -> tuple[int, int]:
    value &= 0xFFFFFFFF
    return value >> 16, value & 0xFFFF


def join_u32(hi: int, lo: int) -> int:
    return ((hi & 0xFFFF) << 16) | (lo & 0xFFFF)


def chute_bits(chutes, words: int = CHUTE_BIT_WORDS) -> list[int]:
    """Chute numbers (1-based) to a bit field: chute n is bit (n-1) % 16 of word (n-1) // 16."""
    field = [0] * words
    for n in chutes:
        if 1 <= n <= words * 16:
            field[(n - 1) // 16] |= 1 << ((n - 1) % 16)
    return field


def chutes_from_bits(field) -> set[int]:
    return {w * 16 + b + 1 for w, word in enumerate(field) for b in range(16) if word >> b & 1}
