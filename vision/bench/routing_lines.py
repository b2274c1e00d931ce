"""Measure what reading the Chinese words of a routing line (大头笔) costs.

    sortline bench routing-lines [--labels 60] [--seed 5] [--json] [--read-rates TIER]

Synthetic labels print routing lines with Chinese words before the code (`冀A石家庄 203-00 17`).
The project's line finder cuts each label's routing line; the same cut is read by the project's
text model (`line_input`, 32 x 256, no Chinese) and by the PP-OCRv4 Chinese recognition model
shipped inside the `rapidocr-onnxruntime` wheel (its own resize to 48 px high), each alone on one
thread with batch 1, as a reader would run them per parcel. Reported: time per line (median, p99)
and how many lines each reads right: PP-OCR the whole printed line, Chinese included (spaces
ignored); the project's model the code's segments; the project's reader path for one routing
line (read whole, then its words joined by hyphens, Chinese words left out) a code at the
routing floor; and PP-OCR on the line's first word alone (the Chinese word before the code), the
least a reader needing the Chinese would read with it. A measuring tool, not a run-time path:
rapidocr-onnxruntime is a development dependency only.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

# Lines as printed on real labels (issue 19) and as the plan's Chinese words would name them.
FORMS = ("冀A石家庄 203-00 17", "冀-辛集 Q07-00 35", "石家庄 312-Q03-01", "冀A 738 V21 004",
         "辛集 571 J25 03", "保定曲阳 312-Q02-05")


def _routing_cuts(n: int, seed: int):
    """(printed line, flat label, line box) of `n` synthetic labels, the box as the project's
    line finder gives it (the found line nearest the printed routing line)."""
    from vision.synth import random_truth
    from vision.synth.label import draw_label
    from vision.synth.truth import LabelTruth
    from vision.textlines import find_lines
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = random_truth(rng)
        printed = FORMS[i % len(FORMS)]
        art = draw_label(LabelTruth(base.courier, base.waybill, printed), rng)
        top = art.boxes["routing"][0][1]
        lines = find_lines(art.image)
        if lines:
            out.append((printed, art.image, min(lines, key=lambda b: abs(b[1] - top))))
    return out


def _ppocr_recogniser():
    """PP-OCRv4 recognition alone, one thread, as rapidocr-onnxruntime configures it."""
    try:
        from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer
        from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
        from rapidocr_onnxruntime.utils import read_yaml, update_model_path
    except ImportError as exc:
        raise SystemExit(f"rapidocr-onnxruntime is needed to measure its recogniser ({exc}): "
                         ".venv/bin/pip install -r requirements-dev.txt") from exc
    config = update_model_path(read_yaml(str(DEFAULT_CFG_PATH)))["Rec"]
    config.update(intra_op_num_threads=1, inter_op_num_threads=1, rec_batch_num=1)
    return TextRecognizer(config)


def _crop(image: np.ndarray, box) -> np.ndarray:
    """The line with the margin line_input gives it, as a BGR image for PP-OCR."""
    import cv2
    x0, y0, x1, y1 = box
    h = y1 - y0
    pad_x, pad_y = int(0.25 * h) + 4, int(0.2 * h) + 3
    crop = image[max(0, y0 - pad_y):y1 + pad_y, max(0, x0 - pad_x):x1 + pad_x]
    return cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)


def _timed(fn, items):
    """Results, wall-clock and CPU milliseconds per item. On a loaded machine the wall clock
    counts the time other jobs held the core; the CPU time of a one-thread session does not."""
    out, wall, cpu = [], [], []
    for item in items:
        start, start_cpu = time.perf_counter(), time.process_time()
        out.append(fn(item))
        wall.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - start_cpu) * 1000.0)
    return out, (wall, cpu)


def _summary(times, right, n):
    wall, cpu = times
    return {"median_ms": round(float(np.median(wall)), 2), "p99_ms": round(float(np.percentile(wall, 99)), 2),
            "cpu_median_ms": round(float(np.median(cpu)), 2), "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 2),
            "right": int(right), "lines": n}


def _code_of(text: str):
    from vision.routing_code import find_routing_code
    found = find_routing_code(text)
    return found.code if found is not None else None


def _project_line(model, image, box):
    """The reader's routing hit for one line: read whole, then its words (Chinese ones left out)
    joined by hyphens when that did not give a code to take."""
    from vision.deadline import Deadline
    from vision.textlines import line_input
    from vision.textread import _found, _read_lines
    deadline = Deadline(1000.0)
    hits = _found(model, image, [box], _read_lines(model, [line_input(image, box)], deadline), deadline)
    return next((h for _, h in hits if h.kind == "routing_code"), None)


def measure(n: int, seed: int) -> dict:
    from fastpath.routing_code import canonical
    from vision.fusion import ROUTING_MIN_CONFIDENCE
    from vision.textlines import line_input, line_pieces
    from vision.textmodel import runtime
    cuts = _routing_cuts(n, seed)
    ours, ppocr = runtime.load(), _ppocr_recogniser()
    for printed, image, box in cuts[:3]:       # warm both sessions up
        ours.read(line_input(image, box)[None])
        ppocr([_crop(image, box)])
    own_reads, own_ms = _timed(lambda c: ours.read(line_input(c[1], c[2])[None])[0], cuts)
    joined_hits, joined_ms = _timed(lambda c: _project_line(ours, c[1], c[2]), cuts)
    pp_reads, pp_ms = _timed(lambda c: ppocr([_crop(c[1], c[2])])[0][0], cuts)
    # Only the Chinese word before the code: the first word the line finder's gaps part.
    word_reads, word_ms = _timed(lambda c: ppocr([_crop(c[1], line_pieces(c[1], c[2])[0])])[0][0], cuts)
    word_right = sum(text.replace(" ", "") == printed.split(" ")[0]
                     for (printed, _, _), (text, _) in zip(cuts, word_reads))
    own_right = sum(_code_of(text) == canonical(printed).decode()
                    for (printed, _, _), (text, _) in zip(cuts, own_reads))
    pp_right = sum(text.replace(" ", "") == printed.replace(" ", "")
                   for (printed, _, _), (text, _) in zip(cuts, pp_reads))
    joined_right = sum(hit is not None and hit.text == canonical(printed).decode()
                       and hit.confidence >= ROUTING_MIN_CONFIDENCE for (printed, _, _), hit in zip(cuts, joined_hits))
    return {"labels": n, "seed": seed, "forms": list(FORMS),
            "project_model": _summary(own_ms, own_right, len(cuts)),
            "project_reader_line": _summary(joined_ms, joined_right, len(cuts)),
            "ppocr_v4_rec": _summary(pp_ms, pp_right, len(cuts)),
            "ppocr_v4_rec_chinese_word": _summary(word_ms, word_right, len(cuts)),
            "ppocr_examples": [text for text, _ in pp_reads[:len(FORMS)]]}


STYLES = {   # routing lines as printed, by style
    "hyphens": ("571-J25-03", "312-Q03-01", "203-00-17", "300-03-03-26"),
    "spaces": ("738 V21 004", "571 J25 03", "312 Q03 01", "203 00 17"),
    "mixed": ("905B K017-00 41", "300- 03-03 26", "203-00 17", "Q07-00 35"),
    "chinese": FORMS[:4],
}


def read_rates(n: int, seed: int, tier: str, budget_ms: float) -> dict:
    """Routing codes the whole reader (read_label) gives on `n` synthetic labels per style:
    right, wrong, none; the plan's shapes are those of the styles' codes."""
    from fastpath.routing_code import canonical
    from vision import read_label
    from vision.routing_code import routing_shape, use_routing_shapes
    from vision.synth import random_truth, render_label
    from vision.synth.truth import LabelTruth
    use_routing_shapes({routing_shape(canonical(f).decode()) for forms in STYLES.values() for f in forms})
    out = {}
    try:
        for style, forms in STYLES.items():
            rng = np.random.default_rng([seed, len(style)])
            counts = {"right": 0, "wrong": 0, "none": 0}
            for i in range(n):
                base = random_truth(rng)
                printed = forms[i % len(forms)]
                read = read_label(render_label(LabelTruth(base.courier, base.waybill, printed), rng, tier), budget_ms)
                code = canonical(printed).decode()
                counts["right" if read.routing_code == code else "wrong" if read.routing_code else "none"] += 1
            out[style] = counts
    finally:
        use_routing_shapes(None)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline bench routing-lines", description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=60)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--read-rates", metavar="TIER", help="also read whole labels of each printed style "
                        "in this tier (clean, damaged, ...) with the reader")
    parser.add_argument("--budget-ms", type=float, default=1000.0)
    args = parser.parse_args(argv)
    report = measure(args.labels, args.seed)
    if args.read_rates:
        report["read_rates"] = {"tier": args.read_rates, "budget_ms": args.budget_ms,
                                **read_rates(args.labels, args.seed, args.read_rates, args.budget_ms)}
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        for name in ("project_model", "project_reader_line", "ppocr_v4_rec", "ppocr_v4_rec_chinese_word"):
            r = report[name]
            print(f"{name:26s} wall median {r['median_ms']:6.2f} ms p99 {r['p99_ms']:6.2f} ms; "
                  f"CPU median {r['cpu_median_ms']:6.2f} ms p99 {r['cpu_p99_ms']:6.2f} ms; "
                  f"right {r['right']}/{r['lines']}")
        print("PP-OCR reads:", " | ".join(report["ppocr_examples"]))
        if "read_rates" in report:
            print("reader, routing codes per style:", report["read_rates"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
