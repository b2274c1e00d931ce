"""`python -m edge.bench.web`: what the line screen and the shift report cost, as JSON.

Label thumbnails (reduced JPEG decode against a full decode and resize) and a shift report of
an eight-hour shift at 5,000 parcels per hour from records written by the real Records class.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_thumbnails(folder: Path, repeat: int = 30) -> dict:
    import cv2
    import numpy as np

    from vision.synth import random_truth, render_label

    from ..web.thumbs import make_thumbnail
    rng = np.random.default_rng(3)
    path = folder / "label.jpg"
    cv2.imwrite(str(path), render_label(random_truth(rng), rng, tier="clean"), [cv2.IMWRITE_JPEG_QUALITY, 92])

    def full():
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        h, w = img.shape
        cv2.imencode(".jpg", cv2.resize(img, (320, round(h * 320 / w)), interpolation=cv2.INTER_AREA))
    reduced_ms, full_ms = _median_ms(lambda: make_thumbnail(path), repeat), _median_ms(full, repeat)
    return {"image_bytes": path.stat().st_size, "thumbnail_bytes": len(make_thumbnail(path)),
            "reduced_decode_median_ms": round(reduced_ms, 2), "full_decode_median_ms": round(full_ms, 2),
            "speedup": round(full_ms / reduced_ms, 1)}


def bench_report(folder: Path, parcels: int = 40_000, hours: float = 8.0) -> dict:
    from fastpath.decision import Decision, Reason
    from vision.result import LabelRead

    from ..records import Records
    from ..report import make_report
    records = Records(folder / "records")
    read = LabelRead(("SF1234567890123",), "571-J25-03", "SF")
    start = time.time() - hours * 3600
    t0 = time.perf_counter()
    for i in range(parcels):
        records.decided(plc_boot=1, tracking=i + 1, scan_seq=i + 1, read=read,
                        decision=Decision(1 + i % 22, Reason.PREADVICE, "SF", "Qicun"), plan_version="p",
                        times={"total_ms": 20.0 + i % 50})
        records.confirmed(1, i + 1, 1 + i % 22, "DIVERTED")
    if not records.flush(wait_s=120):
        raise SystemExit(f"the records in {folder / 'records'} were not written: {records.error}")
    records.db.execute("UPDATE parcels SET scanned_wall = ? + (id - 1) * ?", (start, hours * 3600 / parcels))
    write_s = time.perf_counter() - t0
    records.close()
    t0 = time.perf_counter()
    shift, files = make_report(folder / "records" / "parcels.sqlite", start, start + hours * 3600, folder / "out")
    report_s = time.perf_counter() - t0
    return {"parcels": len(shift.parcels), "hours": hours, "records_write_s": round(write_s, 2),
            "report_s": round(report_s, 2), "html_bytes": files[-1].stat().st_size,
            "parcels_csv_bytes": files[0].stat().st_size}


async def bench_view(folder: Path, repeat: int = 30) -> dict:
    """One tick of the live view over the records of bench_report (a full shift), 50 recent parcels."""
    import asyncio

    from ..run import build_controller
    from ..config import load_config
    from ..config_copy import derive_config
    from ..web.live import LiveView, RecordsReader
    repo = Path(__file__).resolve().parents[2]
    path = derive_config(repo / "configs" / "county-24.toml", folder / "line.toml",
                         {"records": {"folder": str(folder / "records")}, "plan": {"watch": False}})
    controller = build_controller(load_config(path))
    controller.started_wall = 0.0          # the whole shift of records counts, as after eight hours
    for i in range(50):
        controller.recent.append({"tracking": i, "image": None, "waybills": ["SF1234567890123"],
                                  "routing_code": "571-J25-03", "sources": {"waybill": "barcode"},
                                  "no_read_reason": None, "chute": 1, "reason": "PREADVICE",
                                  "destination": "Xiaolinshui", "total_ms": 40.0, "slack_ms": 300.0})
    reader = RecordsReader(controller.records.path)
    view = LiveView(controller, reader)
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        size = len(json.dumps(await view.build(), ensure_ascii=False).encode())
        times.append((time.perf_counter() - t0) * 1000)
    reader.close()
    controller.records.close()
    await asyncio.sleep(0)
    return {"records": 40_000, "build_and_encode_median_ms": round(statistics.median(times), 2),
            "payload_bytes": size}


def main(argv=None) -> int:
    import asyncio
    argparse.ArgumentParser(prog="sortline bench web", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sortline-web-bench-") as tmp:
        result = {"thumbnails": bench_thumbnails(Path(tmp)), "report": bench_report(Path(tmp))}
        result["live_view"] = asyncio.run(bench_view(Path(tmp)))
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
