"""What one label read produced."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

# The name under which a symbol of no courier's number format is reported: in `sources`, in a no
# read's reason, on the line screen (edge/web/i18n.py) and in `sortline read-label`.
UNKNOWN_FORMAT = "unknown_format"


@dataclass(frozen=True)
class LabelRead:
    """Outcome of reading one image.

    `waybills` holds every distinct waybill found: one is a read, several is a multi read, none is
    a no read (then `no_read_reason` says why). `sources` names where each field came from
    ("barcode", "text" or "barcode+text"). `confidence` is the weakest evidence used, 0..1;
    `routing_confidence` the routing code's own (0 without one). `routing_note` says why a routing
    code that was read is not `routing_code` (another shape than the plan's, in doubt, several).
    `unknown_format` holds the texts of confident barcodes of no courier's number format, given
    only when no waybill was read (then `sources["unknown_format"]` names them with their symbology).
    """

    waybills: tuple[str, ...]
    routing_code: str | None
    courier: str | None
    sources: dict = field(default_factory=dict)
    confidence: float = 0.0
    elapsed_ms: float = 0.0
    no_read_reason: str | None = None
    routing_confidence: float = 0.0
    routing_note: str | None = None
    unknown_format: tuple[str, ...] = ()

    @property
    def is_read(self) -> bool:
        return len(self.waybills) == 1 or (not self.waybills and self.routing_code is not None)

    @property
    def is_multi_read(self) -> bool:
        return len(self.waybills) > 1


def no_read(reason: str, elapsed_ms: float = 0.0) -> LabelRead:
    return LabelRead((), None, None, {}, 0.0, elapsed_ms, reason)


def with_preadvised(read: LabelRead, in_preadvice) -> LabelRead:
    """`read` with those of its unknown-format symbols that the couriers' pre-advice knows taken as
    its waybills: a number the pre-advice lists is a waybill whatever its shape.

    `in_preadvice(text) -> bool`, e.g. `lambda t: plan.preadvice_destination(t) is not None`. The
    reader does not hold the pre-advice (millions of records, in the controller's process), so the
    caller that does applies this before deciding. Several such symbols are several waybills: a
    multi read, as two labels are.
    """
    known = tuple(t for t in read.unknown_format if in_preadvice(t))
    if not known:
        return read
    waybills = tuple(sorted(set(read.waybills) | set(known)))
    sources = {k: v for k, v in read.sources.items() if k != UNKNOWN_FORMAT}
    sources["waybill"] = "barcode"
    if len(waybills) > 1:
        sources["by_waybill"] = {w: "barcode" for w in waybills}
    rest = tuple(t for t in read.unknown_format if t not in known)
    if rest:
        sources[UNKNOWN_FORMAT] = ", ".join(rest)
    confidence = read.confidence if read.routing_code else 1.0
    return replace(read, waybills=waybills, courier=None, sources=sources, confidence=confidence,
                   no_read_reason=None, unknown_format=rest)
