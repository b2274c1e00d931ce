"""The PLC interface as OPC UA variables: names, types and their mapping to the register image.

One source of truth for the simulator's OPC UA server and the OPC UA link; plain Python, so that
importing it never imports asyncua. docs/plc-interface.md ("OPC UA") explains it for PLC
programmers.

Each event ring travels as one UInt32 array that also carries the boot id and the newest sequence
number, so that every data-change notification is a consistent snapshot, as the single Modbus read
of the header and the scan ring is. The controller's assignment slots are separate variables so
that one Write request carries one whole slot.
"""
from dataclasses import dataclass

from . import regmap as rm
from .regmap import join_u32, split_u32

NAMESPACE = "urn:sortline:plc"
OBJECT = "Sorter"
PLC_FOLDER = "Plc"
EDGE_FOLDER = "Edge"

SCAN_FIELDS = 3              # seq, tracking, encoder
CONFIRM_FIELDS = 4           # seq, tracking, chute, result
SCAN_EVENTS_LEN = 2 + rm.RING_SLOTS * SCAN_FIELDS
CONFIRM_EVENTS_LEN = 2 + rm.RING_SLOTS * CONFIRM_FIELDS
ASSIGN_FIELDS = 4            # aseq, tracking, chute, reason


@dataclass(frozen=True)
class Var:
    name: str
    kind: str                # "u16", "u32", "u32[]", "bool[]"
    offset: int              # first register of the value in its block (-1: composed from several)
    length: int = 1          # elements, for arrays

    @property
    def is_array(self) -> bool:
        return self.kind.endswith("[]")


PLC_VARS = (
    Var("Version", "u16", rm.PLC_VERSION),
    Var("Heartbeat", "u16", rm.PLC_HEARTBEAT),
    Var("LineState", "u16", rm.PLC_LINE_STATE),
    Var("BootId", "u16", rm.PLC_BOOT_ID),
    Var("ScanSeq", "u32", rm.PLC_SCAN_SEQ),
    Var("ConfirmSeq", "u32", rm.PLC_CONFIRM_SEQ),
    Var("Encoder", "u32", rm.PLC_ENCODER),
    Var("EdgeHeartbeatSeen", "u16", rm.PLC_EDGE_HB_SEEN),
    Var("Flags", "u16", rm.PLC_FLAGS),
    Var("AssignTaken", "u32", rm.PLC_ASSIGN_TAKEN),
    Var("Refused", "u16", rm.PLC_REFUSED),
    Var("LastRefusal", "u16", rm.PLC_LAST_REFUSAL),
    Var("ScanEvents", "u32[]", -1, SCAN_EVENTS_LEN),
    Var("ConfirmEvents", "u32[]", -1, CONFIRM_EVENTS_LEN),
    Var("ChuteFull", "bool[]", rm.PLC_CHUTE_FULL, rm.MAX_CHUTES),
    Var("ChuteFault", "bool[]", rm.PLC_CHUTE_FAULT, rm.MAX_CHUTES),
    Var("ChuteDisabled", "bool[]", rm.PLC_CHUTE_DISABLED, rm.MAX_CHUTES),
)

EDGE_VARS = (
    Var("Heartbeat", "u16", rm.EDGE_HEARTBEAT),
    Var("ScanAck", "u32", rm.EDGE_SCAN_ACK),
    Var("ConfirmAck", "u32", rm.EDGE_CONFIRM_ACK),
    Var("ChuteDisable", "bool[]", rm.EDGE_CHUTE_DISABLE, rm.MAX_CHUTES),
    *(Var(f"Assign{i:02d}", "u32[]", rm.EDGE_ASSIGN_RING + i * rm.SLOT_WORDS, ASSIGN_FIELDS)
      for i in range(rm.RING_SLOTS)),
)

PLC_BY_NAME = {v.name: v for v in PLC_VARS}


def plc_var_words(var: Var) -> tuple[tuple[int, int], ...]:
    """The register ranges (offset, end) of the PLC block that a PLC variable's value is made of."""
    if var.name == "ScanEvents":
        ring = rm.PLC_SCAN_RING
        return (rm.PLC_BOOT_ID, rm.PLC_BOOT_ID + 1), (rm.PLC_SCAN_SEQ, rm.PLC_SCAN_SEQ + 2), \
            (ring, ring + rm.RING_SLOTS * rm.SLOT_WORDS)
    if var.name == "ConfirmEvents":
        ring = rm.PLC_CONFIRM_RING
        return (rm.PLC_BOOT_ID, rm.PLC_BOOT_ID + 1), (rm.PLC_CONFIRM_SEQ, rm.PLC_CONFIRM_SEQ + 2), \
            (ring, ring + rm.RING_SLOTS * rm.SLOT_WORDS)
    words = {"u16": 1, "u32": 2, "bool[]": rm.CHUTE_BIT_WORDS}[var.kind]
    return ((var.offset, var.offset + words),)
EDGE_BY_NAME = {v.name: v for v in EDGE_VARS}


def assign_var(slot: int) -> str:
    return f"Assign{slot:02d}"


def node_id(folder: str, name: str) -> str:
    """The string identifier the simulator gives a variable (a PLC may use its own; the link browses)."""
    return f"{OBJECT}.{folder}.{name}"


def browse_path(ns: int, folder: str, name: str) -> str:
    return f"/{ns}:{OBJECT}/{ns}:{folder}/{ns}:{name}"


# -- register image -> PLC variable values (the simulator publishes these) -----------------------
def plc_value(var: Var, block: list[int]):
    """The value of one PLC variable, from the PLC block of the register image (offset 0 = plc_base)."""
    if var.name == "ScanEvents":
        return scan_events(block)
    if var.name == "ConfirmEvents":
        return confirm_events(block)
    if var.kind == "u16":
        return block[var.offset]
    if var.kind == "u32":
        return join_u32(block[var.offset], block[var.offset + 1])
    words = block[var.offset:var.offset + rm.CHUTE_BIT_WORDS]
    return [bool(words[i // 16] >> (i % 16) & 1) for i in range(var.length)]


def scan_events(block: list[int]) -> list[int]:
    out = [block[rm.PLC_BOOT_ID], join_u32(block[rm.PLC_SCAN_SEQ], block[rm.PLC_SCAN_SEQ + 1])]
    for i in range(rm.RING_SLOTS):
        w = block[rm.PLC_SCAN_RING + i * rm.SLOT_WORDS:][:rm.SLOT_WORDS]
        out += [join_u32(w[0], w[1]), join_u32(w[2], w[3]), join_u32(w[4], w[5])]
    return out


def confirm_events(block: list[int]) -> list[int]:
    out = [block[rm.PLC_BOOT_ID], join_u32(block[rm.PLC_CONFIRM_SEQ], block[rm.PLC_CONFIRM_SEQ + 1])]
    for i in range(rm.RING_SLOTS):
        w = block[rm.PLC_CONFIRM_RING + i * rm.SLOT_WORDS:][:rm.SLOT_WORDS]
        out += [join_u32(w[0], w[1]), join_u32(w[2], w[3]), w[4], w[5]]
    return out


# -- OPC UA event arrays -> (boot id, newest seq, slots) (the link reads these) ----------------
def split_events(values: list[int], fields: int) -> tuple[int, int, list[tuple[int, ...]]]:
    boot, newest = values[0], values[1]
    slots = [tuple(values[2 + i * fields:2 + (i + 1) * fields]) for i in range(rm.RING_SLOTS)]
    return boot, newest, slots


def check_array(var: Var, value) -> str | None:
    """What is wrong with a value the PLC published for an array variable, or None."""
    if not isinstance(value, (list, tuple)):
        return f"expected an array of {var.length}, got {type(value).__name__}"
    if len(value) != var.length:
        return f"expected an array of {var.length}, got {len(value)} elements"
    if var.kind == "u32[]" and not all(isinstance(x, int) and 0 <= x <= 0xFFFFFFFF for x in value):
        return "expected UInt32 elements"
    if var.kind == "bool[]" and not all(isinstance(x, bool) for x in value):
        return "expected Boolean elements"
    return None


def chutes_from_flags(flags) -> set[int]:
    return {i + 1 for i, on in enumerate(flags) if on}


def flags_from_chutes(chutes) -> list[bool]:
    return [n in chutes for n in range(1, rm.MAX_CHUTES + 1)]


# -- controller variable value -> register words (the simulator stores these) -------------------
def edge_registers(var: Var, value) -> tuple[int, list[int]]:
    """Offset in the controller block and register words for a value written to `var`.

    Raises ValueError with the reason when the value does not fit the interface."""
    if var.kind == "u16":
        if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise ValueError(f"{var.name} takes a UInt16, got {value!r}")
        return var.offset, [value]
    if var.kind == "u32":
        if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"{var.name} takes a UInt32, got {value!r}")
        return var.offset, list(split_u32(value))
    problem = check_array(var, value)
    if problem:
        raise ValueError(f"{var.name}: {problem}")
    if var.kind == "bool[]":
        return var.offset, rm.chute_bits(chutes_from_flags(value))
    aseq, tracking, chute, reason = value
    if chute > 0xFFFF or reason > 0xFFFF:
        raise ValueError(f"{var.name}: chute and reason must fit a UInt16, got {chute} and {reason}")
    return var.offset, [*split_u32(aseq), *split_u32(tracking), chute, reason]
