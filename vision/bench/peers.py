"""`sortline bench vision-peers --images DIR --json`: the label reader beside independent readers.

Every image of DIR is read by
- the product's reader (`vision.pipeline.read_label`) at the shipped budget and at a generous one,
  with the built-in courier formats, as `sortline read-label` reads without --config;
- the reader's own Code 128 stage with no courier rules (`read_code128`, generous budget), which
  tells a symbol it could not decode from one it decoded and did not take;
- zxing-cpp alone, every format it knows, no courier rules;
- PP-OCRv4 as shipped in the `rapidocr-onnxruntime` wheel (a measuring peer only: the product
  never imports it; install it from requirements-dev.txt).
Each answer is compared with the truth beside the images: `truth.csv` (image, courier, waybill,
routing_code, also_waybills) or, as in shared/realdata, NAME.txt beside NAME.jpg whose first line
is the number to read and whose other lines are other symbols printed on the label.

What counts, per engine (the peers have no notion of a waybill, so they are judged generously):
- reader: its one waybill is right or wrong; several is a multi read; its routing code, compared
  with letters and digits only (the reader may print hyphens where the label prints spaces).
- the Code 128 stage and zxing alone: right when the number is among the (linear) symbols
  decoded; wrong when it is not and a decoded symbol is no text known to be on the label.
- PP-OCR: right when a text line holds the number (spaces ignored); wrong when none does and a line
  holds another long number (10+ letters and digits, 8+ of them digits); the routing code is
  found when a line holds it (letters and digits only). A line is not told to be a routing code,
  so no routing code is counted wrong.
Decoding the image file is not timed; each engine's time is its own work on the decoded pixels,
one thread each (OpenCV and PP-OCR's onnxruntime sessions are set to one).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field

import numpy as np

SHIPPED_BUDGET_MS = 40.0     # read_label's default: what the line gives a label
GENEROUS_BUDGET_MS = 2000.0  # what the reader reaches when time is no object
ENGINES = ("reader", "zxing", "ppocr")
TRUTH_FILE = "truth.csv"
TRUTH_COLUMNS = ("image", "courier", "waybill", "routing_code", "also_waybills")
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
# A PP-OCR line "gives a number" when it holds a run this long with this many digits: shorter runs
# are phone fragments, dates and weights, which no reader would take for a waybill.
NUMBER_MIN_LEN = 10
NUMBER_MIN_DIGITS = 8


class TruthError(ValueError):
    """The truth beside the images is missing or does not match them."""


@dataclass(frozen=True)
class Truth:
    path: str
    waybill: str
    routing_code: str | None = None
    also: tuple[str, ...] = ()     # other right answers (a multi-piece label's parent number)
    known: tuple[str, ...] = ()    # other symbols printed on the label: neither right nor wrong
    courier: str | None = None     # whose layout the label is

    @property
    def accepted(self) -> set[str]:
        return {self.waybill, *self.also}


@dataclass
class Outcome:
    """One engine on one image."""
    waybill: str                  # "right", "wrong", "multi" or "none"
    given: list[str]              # what the engine offered as numbers
    ms: float
    routing: str | None = None    # "right", "wrong", "none"; None where not judged
    routing_given: str | None = None
    note: str | None = None
    extra: dict = field(default_factory=dict)


def alnum(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", text.upper())


# ---- truth ----

def load_truth(root: str) -> list[Truth]:
    if os.path.exists(os.path.join(root, TRUTH_FILE)):
        return _truth_csv(root)
    truths = _truth_txt(root)
    if not truths:
        raise TruthError(f"no truth for {root}: expected {TRUTH_FILE} (columns {', '.join(TRUTH_COLUMNS)}) "
                         "or NAME.txt beside each NAME.jpg")
    return truths


def _truth_csv(root: str) -> list[Truth]:
    path = os.path.join(root, TRUTH_FILE)
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(TRUTH_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise TruthError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                             f"the header must be {','.join(TRUTH_COLUMNS)}")
        rows = list(reader)
    truths = [_truth_row(root, path, n, row) for n, row in enumerate(rows, start=2)]
    listed = {os.path.basename(t.path) for t in truths}
    unlisted = sorted(f for f in os.listdir(root) if f.lower().endswith(IMAGE_EXTS) and f not in listed)
    if unlisted:
        raise TruthError(f"{path}: no row for {', '.join(unlisted)}; add one per image (read the label by eye)")
    return truths


def _truth_row(root: str, path: str, line: int, row: dict) -> Truth:
    image = (row["image"] or "").strip()
    waybill = (row["waybill"] or "").strip()
    if not image or not waybill:
        raise TruthError(f"{path} line {line}: image and waybill are required")
    if not os.path.exists(os.path.join(root, image)):
        raise TruthError(f"{path} line {line}: {image} is not in {root}")
    also = tuple(x for x in (row["also_waybills"] or "").split() if x)
    return Truth(os.path.join(root, image), waybill, (row["routing_code"] or "").strip() or None, also,
                 courier=(row["courier"] or "").strip() or None)


def _truth_txt(root: str) -> list[Truth]:
    from vision.realdata import samples
    return [Truth(path, expected[0], known=tuple(expected[1:])) for path, expected in samples(root) if expected]


# ---- engines ----

class ReaderEngine:
    def __init__(self, budget_ms: float):
        from vision.pipeline import read_label
        self.read_label, self.budget_ms = read_label, budget_ms

    def __call__(self, image: np.ndarray, truth: Truth) -> Outcome:
        start = time.perf_counter()
        read = self.read_label(image, budget_ms=self.budget_ms)
        ms = (time.perf_counter() - start) * 1000
        given = list(read.waybills)
        if not given:
            verdict = "none"
        elif len(given) > 1:
            verdict = "multi"
        else:
            verdict = "right" if given[0] in truth.accepted else "wrong"
        out = Outcome(verdict, given, ms, note=read.no_read_reason or read.routing_note,
                      extra={"courier": read.courier} if given else {})
        if truth.routing_code is not None:
            out.routing_given = read.routing_code
            out.routing = _routing_verdict(read.routing_code, truth.routing_code)
        return out


class Code128StageEngine:
    """The reader's own Code 128 stage with no courier rules (`read_code128`): tells a symbol the
    reader could not decode from one it decoded and then did not take as a waybill."""

    def __init__(self, budget_ms: float):
        from vision.pipeline import read_code128
        self.read_code128, self.budget_ms = read_code128, budget_ms

    def __call__(self, image: np.ndarray, truth: Truth) -> Outcome:
        start = time.perf_counter()
        texts = self.read_code128(image, budget_ms=self.budget_ms)
        ms = (time.perf_counter() - start) * 1000
        return _symbols_outcome(list(texts), truth, ms)


def _symbols_outcome(texts: list[str], truth: Truth, ms: float, extra: dict | None = None) -> Outcome:
    """Decoded symbols with no rules: right when the number is among them, wrong when it is not
    and one of them is no text known to be on the label. Such unknown texts are kept apart
    (`unknown`) even beside the right number: where every symbol of the label is known (the
    NAME.txt truth of shared/realdata), they are misdecodes that no courier rule caught."""
    unknown = sorted(set(texts) - truth.accepted - set(truth.known))
    if truth.accepted & set(texts):
        verdict = "right"
    else:
        verdict = "wrong" if unknown else "none"
    extra = dict(extra or {})
    if unknown:
        extra["unknown"] = unknown
    return Outcome(verdict, texts, ms, extra=extra)


def _routing_verdict(given: str | None, printed: str) -> str:
    if given is None:
        return "none"
    return "right" if alnum(given) == alnum(printed) else "wrong"


class ZxingEngine:
    def __init__(self):
        import zxingcpp
        self.zxing = zxingcpp
        self.linear = set(zxingcpp.barcode_formats_list(zxingcpp.BarcodeFormat.AllLinear))

    def __call__(self, image: np.ndarray, truth: Truth) -> Outcome:
        start = time.perf_counter()
        symbols = self.zxing.read_barcodes(image)
        ms = (time.perf_counter() - start) * 1000
        # A QR code's URL is no candidate for a waybill number: only linear symbols are.
        texts = sorted({s.text for s in symbols if s.format in self.linear})
        others = sorted({s.text for s in symbols if s.format not in self.linear})
        return _symbols_outcome(texts, truth, ms, {"other_symbols": others} if others else None)


class PpocrEngine:
    def __init__(self):
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError:
            raise SystemExit("bench vision-peers: the PP-OCR peer needs rapidocr-onnxruntime: "
                             ".venv/bin/pip install -r requirements-dev.txt, or leave it out with "
                             "--engines reader,zxing") from None
        # One thread, as the reader gets: the comparison is per core.
        self.ocr = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)

    def __call__(self, image: np.ndarray, truth: Truth) -> Outcome:
        start = time.perf_counter()
        result, _ = self.ocr(image)
        ms = (time.perf_counter() - start) * 1000
        lines = [str(text) for _, text, _ in (result or [])]
        flat = [alnum(line) for line in lines]
        numbers = sorted({run for line in flat for run in _number_runs(line)})
        if any(alnum(number) in line for number in truth.accepted for line in flat):
            verdict = "right"
        elif [n for n in numbers if n not in {alnum(k) for k in truth.known}]:
            verdict = "wrong"
        else:
            verdict = "none"
        out = Outcome(verdict, numbers, ms, extra={"lines": len(lines)})
        if truth.routing_code is not None:
            wanted = alnum(truth.routing_code)
            hit = next((line for line, f in zip(lines, flat) if wanted in f), None)
            out.routing, out.routing_given = ("right" if hit else "none"), hit
        return out


def _number_runs(line: str) -> list[str]:
    return [run for run in re.findall(r"[0-9A-Z]+", line)
            if len(run) >= NUMBER_MIN_LEN and sum(ch.isdigit() for ch in run) >= NUMBER_MIN_DIGITS]


def build_engines(names, budget_ms: float, generous_ms: float) -> dict:
    engines = {}
    if "reader" in names:
        engines[f"reader_{budget_ms:g}ms"] = ReaderEngine(budget_ms)
        engines[f"reader_{generous_ms:g}ms"] = ReaderEngine(generous_ms)
        engines[f"reader_code128_no_rules_{generous_ms:g}ms"] = Code128StageEngine(generous_ms)
    if "zxing" in names:
        engines["zxing_all_formats"] = ZxingEngine()
    if "ppocr" in names:
        engines["ppocr_v4_rapidocr"] = PpocrEngine()
    return engines


# ---- run and score ----

def load_image(path: str) -> np.ndarray:
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise TruthError(f"{path}: not a readable image; replace the file or remove it and its truth row")
    return image


def run(root: str, engines: dict) -> dict:
    truths = load_truth(root)
    rows = []
    for truth in truths:
        image = load_image(truth.path)
        row = {"image": os.path.relpath(truth.path, root), "courier": truth.courier, "waybill": truth.waybill,
               "routing_code": truth.routing_code, "engines": {}}
        for name, engine in engines.items():
            row["engines"][name] = _outcome_json(engine(image, truth))
        rows.append(row)
    return {
        "images_dir": os.path.abspath(root),
        "truth": TRUTH_FILE if os.path.exists(os.path.join(root, TRUTH_FILE)) else "NAME.txt per image",
        "images": len(rows),
        "with_routing_code": sum(t.routing_code is not None for t in truths),
        "engines": {name: summarize(rows, name) for name in engines},
        "rows": rows,
    }


def _outcome_json(out: Outcome) -> dict:
    data = {"waybill": out.waybill, "given": out.given, "ms": round(out.ms, 1)}
    if out.routing is not None:
        data["routing"], data["routing_given"] = out.routing, out.routing_given
    if out.note:
        data["note"] = out.note
    data.update(out.extra)
    return data


def summarize(rows: list[dict], name: str) -> dict:
    outs = [row["engines"][name] for row in rows]
    judged = [o for o in outs if "routing" in o]
    waybills = _verdicts(outs, "waybill")
    routing = _verdicts(judged, "routing")
    ms = np.asarray([o["ms"] for o in outs]) if outs else np.zeros(1)
    return {
        "waybill_read": waybills["right"],
        "waybill_read_rate": _rate(waybills["right"], len(outs)),
        "waybill_wrong": waybills["wrong"],
        "waybill_multi": waybills["multi"],
        "courier_differs": _courier_differs(rows, name),
        "images_with_unknown_symbols": sum("unknown" in o for o in outs),
        "routing_judged": len(judged),
        "routing_read": routing["right"],
        "routing_read_rate": _rate(routing["right"], len(judged)),
        "routing_wrong": routing["wrong"] if judged else None,
        "ms_median": round(float(np.percentile(ms, 50)), 1),
        "ms_p90": round(float(np.percentile(ms, 90)), 1),
    }


def _verdicts(outs: list[dict], key: str) -> dict:
    counts = {"right": 0, "wrong": 0, "multi": 0, "none": 0}
    for out in outs:
        counts[out[key]] += 1
    return counts


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _courier_differs(rows: list[dict], name: str) -> int | None:
    """Right waybills whose courier, as the engine names it, is not the label's layout's (None for
    an engine that names no courier)."""
    outs = [(row["courier"], row["engines"][name]) for row in rows]
    if not any("courier" in out for _, out in outs):
        return None
    return sum(alnum(layout) != alnum(out.get("courier") or "")
               for layout, out in outs if layout and out["waybill"] == "right")


def table(report: dict) -> str:
    head = (f"{'engine':<30} {'waybill':>9} {'wrong':>5} {'multi':>5} {'routing':>9} {'r.wrong':>7} "
            f"{'ms p50':>8} {'ms p90':>8}")
    lines = [f"{report['images']} images in {report['images_dir']} ({report['with_routing_code']} with a routing code)",
             head]
    for name, s in report["engines"].items():
        routing = f"{s['routing_read']}/{s['routing_judged']}" if s["routing_judged"] else "-"
        r_wrong = "-" if s["routing_wrong"] is None else s["routing_wrong"]
        lines.append(f"{name:<30} {s['waybill_read']:>5}/{report['images']:<3} {s['waybill_wrong']:>5} "
                     f"{s['waybill_multi']:>5} {routing:>9} {r_wrong!s:>7} {s['ms_median']:>8} {s['ms_p90']:>8}")
    return "\n".join(lines)


def versions() -> dict:
    """The libraries that decide the figures, so that a run can be compared with another."""
    from importlib import metadata
    found = {}
    for dist in ("zxing-cpp", "opencv-python-headless", "onnxruntime", "rapidocr-onnxruntime", "numpy"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline bench vision-peers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True, metavar="DIR", help="images with truth.csv or NAME.txt beside them")
    parser.add_argument("--json", action="store_true", help="print the whole report, per image, as JSON")
    parser.add_argument("--budget-ms", type=float, default=SHIPPED_BUDGET_MS, help="the reader's shipped budget")
    parser.add_argument("--generous-ms", type=float, default=GENEROUS_BUDGET_MS, help="the reader's generous budget")
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated subset of {','.join(ENGINES)}")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.engines.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ENGINES))
    if unknown or not names:
        parser.error(f"--engines: unknown {', '.join(unknown) or 'empty list'}; choose from {','.join(ENGINES)}")
    if min(args.budget_ms, args.generous_ms) <= 0:
        parser.error("--budget-ms and --generous-ms must be above 0 (milliseconds per label)")
    if not os.path.isdir(args.images):
        parser.error(f"--images: {args.images} is not a directory")
    import cv2
    cv2.setNumThreads(1)
    try:
        report = run(args.images, build_engines(names, args.budget_ms, args.generous_ms))
    except TruthError as exc:
        print(f"bench vision-peers: {exc}", file=sys.stderr)
        return 2
    report["budget_ms"], report["generous_ms"] = args.budget_ms, args.generous_ms
    report["versions"] = versions()
    print(json.dumps(report, indent=1, ensure_ascii=False) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
