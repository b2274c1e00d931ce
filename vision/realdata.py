"""Evaluation on real third-party photographs of Code 128 symbols (never used for training).

The photos live outside the repository, in shared/realdata/barcodes beside the clone
(`SORTLINE_REALDATA` overrides). Each NAME.jpg has NAME.txt with one expected text per line.
"""
from __future__ import annotations

import glob
import os
import time

ENV = "SORTLINE_REALDATA"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def realdata_dir() -> str | None:
    candidates = [os.environ.get(ENV, ""),
                  os.path.join(REPO_ROOT, "..", "shared", "realdata", "barcodes")]
    for path in candidates:
        if path and os.path.isdir(path):
            return os.path.abspath(path)
    return None


def samples(root: str) -> list[tuple[str, list[str]]]:
    out = []
    for path in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
        stem, ext = os.path.splitext(path)
        if ext.lower() not in (".jpg", ".jpeg", ".png") or not os.path.exists(stem + ".txt"):
            continue
        with open(stem + ".txt", encoding="utf-8") as fh:
            expected = [line.strip() for line in fh if line.strip()]
        out.append((path, expected))
    return out


def evaluate(root: str, budget_ms: float = 2000.0) -> dict:
    """Images with every expected text found, and expected texts found, with Code 128 reading."""
    from vision.pipeline import read_code128
    rows = []
    for path, expected in samples(root):
        start = time.perf_counter()
        found = set(read_code128(path, budget_ms=budget_ms))
        rows.append({
            "image": os.path.relpath(path, root), "expected": expected,
            "found": sorted(found & set(expected)), "extra": sorted(found - set(expected)),
            "ms": round((time.perf_counter() - start) * 1000, 1),
        })
    n_texts = sum(len(r["expected"]) for r in rows)
    return {
        "images": len(rows),
        "images_fully_read": sum(len(r["found"]) == len(r["expected"]) for r in rows),
        "texts": n_texts,
        "texts_found": sum(len(r["found"]) for r in rows),
        "wrong_texts": sum(len(r["extra"]) for r in rows),
        "rows": rows,
    }
