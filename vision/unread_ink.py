"""Does a printed line hold more characters than were read from it?

The text model reads a line as characters emitted at columns along it (CTC), and a character it
does not emit leaves no trace in the text: a waybill number read with a digit lost is often still
a number of some courier's shape (13 digits read as 12, which five couriers share). The line's
ink tells: n characters printed at a pitch p span about (n - 1) p plus one glyph's width, so the
ink a reading covers, divided by the pitch between its emitted characters, gives the number of
characters printed. A reading whose line shows room for a character more than it holds left one
out. A character lost inside the number shows as a step of two pitches between two characters
read (`characters_skipped`), measured along the number's run of digits, whose pitch is even
(letters of a prefix are emitted less evenly).

Measured on 3,729 right readings of printed waybill numbers (damaged and noisy tiers, seed 777,
docs/perf-vision.md): the ink spans (read characters - 0.30) pitches at the median, +0.10 at
p99.9 and +0.45 at most; the readings that lost a leading digit span +0.65 to +1.33.
"""
from __future__ import annotations

import numpy as np

COLUMN_PX = 4          # input pixels per model output column (256 / 64)
BAND = slice(8, 24)    # input rows that hold every glyph's middle, above and below no neighbour's
INK = 0.5              # line inputs run from ink (0) to paper (1)
GAP_PITCHES = 0.8      # an ink-free run this many pitches wide ends the line (a speck beyond is not)
MIN_GAP_PX = 4
# More than this many pitches of ink beyond what the read characters fill: a character unread.
SPARE_PITCHES = 0.5
# Between two digits of a number's longest run of digits, a step of this many pitches of the run
# holds a digit unread (right readings: 1.43 at most; one that lost a digit inside: 1.96).
SKIP_PITCHES = 1.7
MIN_RUN = 5


def ink_span(line: np.ndarray, columns) -> float | None:
    """The width of the ink of `line` (a text-model input) around the characters read at
    `columns` (runtime.LineModel.read), in pitches of those characters; None for fewer than 4
    characters, whose pitch the reading does not tell."""
    if len(columns) < 4:
        return None
    at = np.asarray(columns, np.float64) * COLUMN_PX + COLUMN_PX / 2
    pitch = (at[-1] - at[0]) / (len(at) - 1)
    if pitch <= 0:
        return None
    inked = np.count_nonzero(line[BAND] < INK, axis=0) >= 2
    max_gap = max(MIN_GAP_PX, GAP_PITCHES * pitch)
    left = _ink_edge(inked, int(at[0]), -1, max_gap)
    right = _ink_edge(inked, int(at[-1]), 1, max_gap)
    # n glyphs span (n - 1) pitches plus one glyph's width (0.6-0.8 of a pitch for digits).
    return (right - left) / pitch


def _ink_edge(inked: np.ndarray, start: int, step: int, max_gap: float) -> int:
    """The last inked column reached from `start` going `step`, across gaps up to `max_gap`."""
    last, gap, x = start, 0, start
    while 0 <= x < inked.size:
        if inked[x]:
            last, gap = x, 0
        else:
            gap += 1
            if gap > max_gap:
                break
        x += step
    return last


def characters_unread(line: np.ndarray, columns, read: int) -> int:
    """How many characters the line's ink holds beyond the `read` ones (0 when it cannot tell)."""
    span = ink_span(line, columns)
    if span is None:
        return 0
    spare = span - read
    return 0 if spare <= SPARE_PITCHES else max(1, int(round(spare)))


def characters_skipped(columns, text: str) -> int:
    """1 when two neighbouring digits of the longest run of digits in `text` (read at `columns`,
    one per character) stand SKIP_PITCHES or more of the run's pitch apart: a digit between them
    was not read. 0 when it cannot tell (a run under MIN_RUN digits, columns not one a character)."""
    if len(columns) != len(text):
        return 0
    best, run = [], []
    for i, ch in enumerate(text):
        run = run + [i] if ch.isdigit() else []
        if len(run) > len(best):
            best = run
    if len(best) < MIN_RUN:
        return 0
    at = np.asarray([columns[i] for i in best], np.float64)
    pitch = (at[-1] - at[0]) / (len(at) - 1)
    if pitch <= 0:
        return 0
    return int(float(np.diff(at).max()) / pitch >= SKIP_PITCHES)
