"""What one label read produced."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LabelRead:
    """Outcome of reading one image.

    `waybills` holds every distinct waybill found: one is a read, several is a multi read, none is
    a no read (then `no_read_reason` says why). `sources` names where each field came from
    ("barcode", "text" or "barcode+text"). `confidence` is the weakest evidence used, 0..1;
    `routing_confidence` the routing code's own (0 without one). `routing_note` says why a routing
    code that was read is not `routing_code` (another shape than the plan's, in doubt, several).
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

    @property
    def is_read(self) -> bool:
        return len(self.waybills) == 1 or (not self.waybills and self.routing_code is not None)

    @property
    def is_multi_read(self) -> bool:
        return len(self.waybills) > 1


def no_read(reason: str, elapsed_ms: float = 0.0) -> LabelRead:
    return LabelRead((), None, None, {}, 0.0, elapsed_ms, reason)
