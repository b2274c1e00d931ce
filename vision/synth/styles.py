"""How a synthetic label is set: its fonts and where its routing code and printed number stand.

The text model is trained on labels in one style only (TRAINED: vision/textmodel/data.py draws
with draw_label's default). HELD_OUT is a fixed list of styles whose fonts appear in no trained
label and whose layouts differ from it; they are drawn only for the benchmark's held-out tiers
(`heldout`, `heldout-damaged`), so that the benchmark shows how well the reader reads a print it
was not made on. Never train on them: tests/vision/test_vision_styles.py checks that training
labels use none of their fonts.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from vision.synth import fonts

HERE = os.path.dirname(os.path.abspath(__file__))
SERIF_BOLD = os.path.join(HERE, "DejaVuSerif-Bold.ttf")
CONDENSED_BOLD = os.path.join(HERE, "DejaVuSansCondensed-Bold.ttf")
MONO_BOOK = os.path.join(HERE, "DejaVuSansMono.ttf")


@dataclass(frozen=True)
class LabelStyle:
    name: str
    number_font: str          # the printed waybill number (Latin)
    routing_font: str         # the routing code's letters and digits
    number_above: bool = False    # the number printed over its barcode rather than under it
    routing_left: bool = False    # the routing code set flush left rather than centred


TRAINED = LabelStyle("trained", fonts.MONO_BOLD, fonts.SANS_BOLD)

HELD_OUT = (
    LabelStyle("serif", SERIF_BOLD, SERIF_BOLD),
    LabelStyle("condensed, number over the bars", CONDENSED_BOLD, CONDENSED_BOLD, number_above=True),
    LabelStyle("thin mono number, condensed code flush left", MONO_BOOK, CONDENSED_BOLD, routing_left=True),
)

HELD_OUT_FONTS = frozenset(f for s in HELD_OUT for f in (s.number_font, s.routing_font))


def held_out_style(rng) -> LabelStyle:
    return HELD_OUT[int(rng.integers(0, len(HELD_OUT)))]
