"""A code reader's result as a label read, and together with the image's read.

The reader's codes are decoded barcodes, each checked by its symbology: they go through the
same courier rules and fusion as the barcodes the line's own readers decode from an image
(vision.fusion.fuse), so that the plan decides the same way whichever read the label. A code
of no courier's format is reported as unknown_format, as the image reader does, and a number
the pre-advice lists is taken all the same (the controller's with_preadvised).

A code reader reads no printed text: a waybill that the pre-advice does not know needs the
routing code from the image, so the image is read then too, and the two reads are combined.
"""
from __future__ import annotations

from dataclasses import replace

from vision.fusion import fuse
from vision.result import UNKNOWN_FORMAT, LabelRead, no_read, with_preadvised
from vision.waybill import check_waybill

from .code_reader_match import Result

SOURCE = "reader"           # in a read's sources: the code reader's codes


def label_read(result: Result | None, waited_ms: float, wait_ms: float, in_preadvice=None) -> LabelRead:
    """What the code reader's result says about the label, as the image reader would say it.

    `in_preadvice(text) -> bool`: a code of no courier's format that the pre-advice lists is a
    waybill all the same (vision.result.with_preadvised), read by the code reader."""
    if result is None:
        return replace(no_read(f"no result from the code reader within {wait_ms:g} ms of the scan", waited_ms),
                       sources={SOURCE: "none"})
    if not result.codes:
        return replace(no_read(f"the code reader read nothing ({result.text})", waited_ms),
                       sources={SOURCE: "no-read"})
    read = fuse(result.codes, [], waited_ms)
    sources: dict = {SOURCE: "read"}
    if read.waybills:
        sources["waybill"] = SOURCE
        if len(read.waybills) > 1:
            sources["by_waybill"] = {w: SOURCE for w in read.waybills}
        return replace(read, sources=sources)
    unknown = tuple(c for c in result.codes if not check_waybill(c).valid)
    sources[UNKNOWN_FORMAT] = ", ".join(unknown)
    read = replace(read, sources=sources, unknown_format=unknown,
                   no_read_reason=f"{UNKNOWN_FORMAT}: {', '.join(unknown)} (read by the code reader, none in a "
                                  f"waybill format: add the courier's format to the sort plan)")
    if in_preadvice is None:
        return read
    known = with_preadvised(read, in_preadvice)
    if not known.waybills:
        return read
    sources = {k: v for k, v in known.sources.items() if k != "by_waybill"}
    sources["waybill"] = SOURCE
    if len(known.waybills) > 1:
        sources["by_waybill"] = {w: SOURCE for w in known.waybills}
    return replace(known, sources=sources)


def combined(codes: LabelRead, image: LabelRead) -> LabelRead:
    """The code reader's read and the image's, as one: every waybill either found (two different
    ones are two labels: a multi read), the routing code from the image."""
    status = codes.sources.get(SOURCE, "none")
    if not image.waybills and image.routing_code is None:
        if codes.waybills:
            return codes
        reason = f"{codes.no_read_reason}; the image: {image.no_read_reason}"
        sources = {**image.sources, SOURCE: status}
        unknown = tuple(dict.fromkeys(codes.unknown_format + image.unknown_format))
        if unknown:
            sources[UNKNOWN_FORMAT] = ", ".join(unknown)
        return replace(image, sources=sources, no_read_reason=reason, unknown_format=unknown)
    if not codes.waybills:
        return replace(image, sources={**image.sources, SOURCE: status})
    waybills = tuple(sorted(set(codes.waybills) | set(image.waybills)))
    sources = {k: v for k, v in image.sources.items() if k != "by_waybill"}
    sources[SOURCE] = status

    def origin(w: str) -> str:
        seen = image.sources.get("by_waybill", {}).get(w, image.sources.get("waybill"))
        if w not in codes.waybills:
            return seen
        return f"{SOURCE}+{seen}" if w in image.waybills else SOURCE
    by_waybill = {w: origin(w) for w in waybills}
    kinds = set(by_waybill.values())
    sources["waybill"] = kinds.pop() if len(kinds) == 1 else "mixed"
    if len(waybills) > 1:
        sources["by_waybill"] = by_waybill
    courier = None
    if len(waybills) == 1:
        courier = codes.courier if waybills[0] in codes.waybills else image.courier
    # The codes are barcodes, checked by their symbology; the image's part keeps its own confidence.
    confidence = image.confidence if set(image.waybills) - set(codes.waybills) or image.routing_code else 1.0
    return replace(image, waybills=waybills, courier=courier, sources=sources, confidence=confidence,
                   no_read_reason=None, unknown_format=())
