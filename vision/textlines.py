"""Find printed text lines on a flattened label and cut them into text-model inputs.

The same cut (`line_input`) feeds training and reading, so the model sees at run time exactly the
kind of picture it was trained on.
"""
from __future__ import annotations

import numpy as np

INPUT_H = 32
INPUT_W = 256
MIN_LINE_H = 12
MAX_LINE_H = 100
MAX_LINES = 10
MIN_BARS = 4            # a piece of barcode left beside a tear: bars met along one row
MIN_PIECE_BARS = 3      # ... or fewer, when it stands in the rows of another piece
MIN_BARS_PER_PX = 0.14  # ... and per pixel of the piece's width (half resolution)
NUMBER_GAP = 16         # at most, in label pixels, between bars and the number printed under them
NUMBER_OVERLAP = 6      # how far a blurred barcode's cluster may reach into its number
GAP_EDGE_X = 6          # half-resolution pixels: a tear's jagged edge reaches this far into the bars
GAP_EDGE_Y = 2          # ... and the damaged band this far over and under them (the number: 3 away)
MAX_NUMBER_H = 34       # printed waybill numbers; routing codes stand taller


def _merge_row_neighbours(boxes: list) -> list:
    """Join blobs of one printed line that a wide gap (a dash, a space) left apart."""
    boxes = sorted(boxes)
    merged: list = []
    for box in boxes:
        for i, other in enumerate(merged):
            h = min(box[3] - box[1], other[3] - other[1])
            overlap = min(box[3], other[3]) - max(box[1], other[1])
            similar = 0.7 <= (box[3] - box[1]) / max(1, other[3] - other[1]) <= 1.45
            gap = box[0] - other[2]
            if similar and overlap > 0.6 * h and -h < gap < 0.9 * h:
                merged[i] = (min(box[0], other[0]), min(box[1], other[1]),
                             max(box[2], other[2]), max(box[3], other[3]))
                break
        else:
            merged.append(box)
    return merged


def _label_type(img: np.ndarray) -> int:
    """16-bit blob labels (half the memory to write: a third of the time) where they cannot run
    out: 8-connected blobs need a free pixel between them, so at most a quarter of the pixels."""
    import cv2
    return cv2.CV_16U if img.size // 4 < 65535 else cv2.CV_32S


def _barcode_mask(ink: np.ndarray):
    """Barcodes, even short receipt-stub ones: many tall strokes side by side; the mask and the
    boxes (x0, y0, x1, y1) of the clusters of bars.

    A tall stroke alone (the "1" of a large routing code) is not a barcode; a cluster of them
    wider than any glyph is, and so is a narrower one whose strokes stand as close together as
    bars: a torn or covered barcode leaves pieces too narrow to pass as wide, but their bars stand
    closer than the strokes of any glyphs (about 1.8 bars per 10 px here, "00" of a routing code 0.9).
    """
    import cv2
    strokes = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, 20)))
    clusters = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1)))
    # Outlines rather than labelled components: the clusters are few, and tracing them is cheaper.
    contours, _ = cv2.findContours(clusters, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    barcodes, boxes, doubtful = [], [], []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if w < 12:
            continue
        if w < 60:
            part = strokes[y:y + h, max(0, x - 1):x + w]   # a bar starting at x starts after x - 1
            per_row = np.count_nonzero(part[:, 1:] > part[:, :-1]) / h
            if per_row < MIN_PIECE_BARS or per_row < MIN_BARS_PER_PX * w:
                continue
            if per_row < MIN_BARS:
                doubtful.append((contour, (x, y, x + w, y + h)))
                continue
        barcodes.append(contour)
        boxes.append((x, y, x + w, y + h))
    # A piece with only three bars left beside a tear is kept where it stands in the rows of
    # another piece (one symbol); a routing code's glyphs never stand in a barcode's rows.
    confirmed = list(boxes)
    for contour, box in doubtful:
        if any(share_rows(box, other) for other in confirmed):
            barcodes.append(contour)
            boxes.append(box)
    mask = np.zeros_like(ink)
    cv2.drawContours(mask, barcodes, -1, 255, thickness=cv2.FILLED)
    _fill_gaps(mask, boxes)
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 3))), boxes


def _fill_gaps(mask: np.ndarray, bars) -> None:
    """Mask the gap between two pieces of one barcode (a tear, tape, a sticker over it).

    The damage leaves jagged edges and glare there that would otherwise join the printed number
    under the barcode into one blob with the barcode's remains. Pieces of one barcode share their
    rows; the gap is filled over the rows both pieces cover, and a little beyond them: the torn,
    taped or covered band overshoots the bars by a few pixels, and its edges, left there, would
    join the number to the band.
    """
    import cv2
    for a in bars:
        for b in bars:
            if not side_by_side(a, b):
                continue
            (_, ay0, ax1, ay1), (bx0, by0, _, by1) = a, b
            top, bottom = max(ay0, by0), min(ay1, by1)
            cv2.rectangle(mask, (ax1 - GAP_EDGE_X, top - GAP_EDGE_Y), (bx0 + GAP_EDGE_X, bottom - 1 + GAP_EDGE_Y),
                          255, cv2.FILLED)


def share_rows(a, b) -> bool:
    """Two boxes in the same rows (their common height at least 0.7 of the taller's): pieces of
    one barcode do; a routing code's glyphs never stand in a barcode's rows."""
    return min(a[3], b[3]) - max(a[1], b[1]) >= 0.7 * max(a[3] - a[1], b[3] - b[1])


def side_by_side(a, b) -> bool:
    """`b` to the right of `a`, in the same rows: two pieces of one torn, taped or covered barcode."""
    return b[0] > a[2] and share_rows(a, b)


def in_pieces(bars) -> bool:
    """Whether a barcode among `bars` stands in pieces side by side: no scan line crosses all of it."""
    return any(side_by_side(a, b) for a in bars for b in bars)


def find_lines(label: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of text-like line blobs in `label` pixels, biggest first."""
    return find_lines_and_bars(label)[0]


def find_lines_and_bars(label: np.ndarray):
    """Line boxes as `find_lines` gives them, and the boxes of the clusters of barcode bars that
    were taken out first (both in `label` pixels).

    Works at half resolution: line blobs are tens of pixels tall, and the morphology is 4x cheaper.
    """
    import cv2
    half = cv2.resize(label, (label.shape[1] // 2, label.shape[0] // 2), interpolation=cv2.INTER_AREA)
    ink = cv2.adaptiveThreshold(half, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 15, 12)
    # Ruled lines are longer than any glyph stroke: take them out first.
    rules = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (35, 1)))
    ink = cv2.subtract(ink, rules)
    bar_mask, bars = _barcode_mask(ink)
    ink = cv2.subtract(ink, bar_mask)
    joined = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (7, 3)))
    count, _, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8, ltype=_label_type(joined))
    blobs = []
    for x, y, w, h, area in stats[1:count]:
        if h >= MIN_LINE_H // 2 and area >= 0.2 * w * h and h <= MAX_LINE_H // 2:
            blobs.append((int(x), int(y), int(x + w), int(y + h)))
    boxes = []
    for x0, y0, x1, y1 in _merge_row_neighbours(blobs):
        w, h = 2 * (x1 - x0), 2 * (y1 - y0)
        if w < 1.5 * h or w > label.shape[1] - 4:
            continue
        boxes.append((2 * x0, 2 * y0, 2 * x1, 2 * y1))
    boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    return boxes[:MAX_LINES], [tuple(2 * v for v in b) for b in bars]


def numbers_side(boxes, bars, max_gap: int = NUMBER_GAP) -> int:
    """+1 when the printed lines next to barcodes stand under their bars, -1 when over them,
    0 when it cannot be told.

    A barcode's human-readable text is printed under it, and a torn or covered barcode still
    leaves pieces of bars: which side the nearest line is on says which way up the label is,
    without reading anything.
    """
    vote = 0
    for bx0, by0, bx1, by1 in bars:
        nearest, side = max_gap + 1, 0
        for x0, y0, x1, y1 in boxes:
            if y1 - y0 > MAX_NUMBER_H or min(x1, bx1) - max(x0, bx0) < 0.3 * (x1 - x0):
                continue
            for gap, where in ((y0 - by1, 1), (by0 - y1, -1)):
                if -NUMBER_OVERLAP <= gap < nearest:
                    nearest, side = gap, where
        vote += side
    return (vote > 0) - (vote < 0)


def beside_bars(box, bars, max_gap: int = NUMBER_GAP) -> bool:
    """Whether `box` is a line printed right over or under a barcode's bars (or what is left of
    them): the barcode's own number, the line most worth reading on a label.

    The pieces of a torn barcode each stand over part of the number only: their overlaps add up.
    """
    x0, y0, x1, y1 = box
    if y1 - y0 > MAX_NUMBER_H:
        return False
    covered = 0
    for bx0, by0, bx1, by1 in bars:
        if -NUMBER_OVERLAP <= y0 - by1 <= max_gap or -NUMBER_OVERLAP <= by0 - y1 <= max_gap:
            covered += max(0, min(x1, bx1) - max(x0, bx0))
    return covered >= 0.3 * (x1 - x0)


def line_input(label: np.ndarray, box, widen: float = 1.0) -> np.ndarray:
    """float32 INPUT_H x INPUT_W crop of one line, contrast-stretched to 0..1, left-aligned;
    `widen` > 1 draws it that much wider than it stands on the label."""
    import cv2
    x0, y0, x1, y1 = box
    h = y1 - y0
    pad_x, pad_y = int(0.25 * h) + 4, int(0.2 * h) + 3
    H, W = label.shape
    crop = label[max(0, y0 - pad_y):min(H, y1 + pad_y), max(0, x0 - pad_x):min(W, x1 + pad_x)]
    if crop.size == 0:
        return np.ones((INPUT_H, INPUT_W), np.float32)
    new_w = int(round(crop.shape[1] * INPUT_H / crop.shape[0] * widen))
    new_w = max(1, min(INPUT_W, new_w))
    small = cv2.resize(crop, (new_w, INPUT_H), interpolation=cv2.INTER_AREA).astype(np.float32)
    flat = small.ravel()
    k_lo, k_hi = int(0.02 * (flat.size - 1)), int(0.98 * (flat.size - 1))
    part = np.partition(flat, (k_lo, k_hi))
    lo, hi = part[k_lo], part[k_hi]
    small = np.clip((small - lo) / max(hi - lo, 8.0), 0.0, 1.0)
    out = np.ones((INPUT_H, INPUT_W), np.float32)
    out[:, :new_w] = small
    return out


SPACE_GAP = 0.3         # a gap at least this many line heights wide parts the words of a line
MAX_PIECES = 6


def line_pieces(label: np.ndarray, box, min_gap: float = SPACE_GAP) -> list:
    """The parts of one printed line that spaces separate, as boxes in `label` pixels (the
    line's own rows); [box] when no gap is wide enough, or when too many are (not a line of
    a few words).

    Routing lines print their segments apart (`738 V21 004`); the text model, trained on lines
    where segments are joined by hyphens, reads such a line as one run of characters. Read word
    by word, the segments come back apart. Spaces are the widest ink-free columns of a line:
    between the glyphs of a word, Chinese ones included, and beside a hyphen there are a few
    pixels only.
    """
    x0, y0, x1, y1 = box
    crop = label[y0:y1, x0:x1]
    if crop.size == 0:
        return [box]
    lo, hi = np.percentile(crop, (2, 98))
    if hi - lo < 16:
        return [box]
    # A column is ink when two of its pixels are darker than mid-way: specks do not part words.
    inked = np.count_nonzero(crop < (lo + hi) / 2, axis=0) >= 2
    pieces, start, end, gap = [], None, 0, 0
    for x, ink in enumerate(inked):
        if ink:
            if start is not None and gap >= min_gap * (y1 - y0):
                pieces.append((start, end))
                start = None
            if start is None:
                start = x
            end, gap = x + 1, 0
        else:
            gap += 1
    if start is not None:
        pieces.append((start, end))
    if not 2 <= len(pieces) <= MAX_PIECES:
        return [box]
    return [(x0 + a, y0, x0 + b, y1) for a, b in pieces]


# The hyphen of the labels' font (DejaVu Sans Bold), in cap heights: its bar stands 0.30 to 0.49
# over the baseline and is 0.42 wide, with 0.14 of paper on each side of it up to the glyphs
# beside it (its side bearing and theirs). Measured on the font's own rendering.
HYPHEN_LOW, HYPHEN_HIGH, HYPHEN_W, HYPHEN_SIDE = 0.30, 0.49, 0.42, 0.14


def _ink_rows(label: np.ndarray, box, lo: float, hi: float):
    """First and last row with ink in `box`: the cap top and the baseline of a word of capitals
    and digits."""
    x0, y0, x1, y1 = box
    rows = np.nonzero(np.count_nonzero(label[y0:y1, x0:x1] < (lo + hi) / 2, axis=1) >= 2)[0]
    if rows.size == 0:
        return y0, y1
    return y0 + int(rows[0]), y0 + int(rows[-1]) + 1


def hyphen_joined(label: np.ndarray, words, dashes=None, widen: float = 1.0) -> np.ndarray:
    """Text-model input of the words of one line (boxes from `line_pieces`) set side by side with
    a hyphen drawn between each two, as the model was trained to read routing codes.

    Read as printed, `738 V21 004` loses its spaces and often a character beside them; read word
    by word, short words are unlike anything the model was trained on and read with little
    confidence. Joined by hyphens, the same pixels read as a code like those of its training.
    The hyphen is drawn to the scale of the last word (the code's digits, not a Chinese word
    before them) and in the line's own ink and paper grey. `dashes` (one per gap, all True when
    None) leaves paper only where a word already ends or starts with a printed hyphen.
    """
    x0, y0, x1, y1 = words[0][0], words[0][1], words[-1][2], words[0][3]
    lo, hi = (int(v) for v in np.percentile(label[y0:y1, x0:x1], (2, 98)))
    top, base = _ink_rows(label, words[-1], lo, hi)
    cap = max(4, base - top)
    pad_y = int(0.2 * (y1 - y0)) + 3
    rows = slice(max(0, y0 - pad_y), min(label.shape[0], y1 + pad_y))
    side = max(1, int(round(HYPHEN_SIDE * cap)))
    dash = np.full((rows.stop - rows.start, 2 * side + max(2, int(round(HYPHEN_W * cap)))), hi, label.dtype)
    bar_top = base - int(round(HYPHEN_HIGH * cap)) - rows.start
    bar_bottom = base - int(round(HYPHEN_LOW * cap)) - rows.start
    gap = dash.copy()
    dash[max(0, bar_top):max(0, bar_bottom), side:dash.shape[1] - side] = lo
    parts = []
    for i, (a, _, b, _) in enumerate(words):
        if i:
            parts.append(dash if dashes is None or dashes[i - 1] else gap)
        parts.append(label[rows, a:b])
    margin = np.full((dash.shape[0], int(0.25 * (y1 - y0)) + 4), hi, label.dtype)
    line = np.concatenate([margin] + parts + [margin], axis=1)
    box = (margin.shape[1], y0 - rows.start, line.shape[1] - margin.shape[1], y1 - rows.start)
    return line_input(line, box, widen=widen)
