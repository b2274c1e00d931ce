"""Measure the simulated PLC: divert timing over a run, and what the label camera costs. Prints JSON.

    python -m sim_plc.bench.timing divert --parcels 1000 --rate 12000       # PLC + a Modbus responder
    python -m sim_plc.bench.timing divert --parcels 1000 --controller real  # PLC + `sortline run`
    python -m sim_plc.bench.timing camera --images 40
    python -m sim_plc.bench.timing loop --seconds 30 [--realtime]           # event-loop wake-up lateness

`divert` runs `sortline sim` in its own process, as on a test bench, and a controller beside it:
either a responder that assigns every parcel a side chute through the real Modbus link the moment
its scan event arrives, or the real controller reading every label. The simulator measures each
diverter's firing against the time computed from the parcel's belt position.
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _line_config(folder: Path, config: Path, port: int) -> Path:
    text = config.read_text()
    text = re.sub(r"(?m)^port = \d+", f"port = {port}", text)
    text = re.sub(r'(?m)^(\[camera\][^\[]*?)^folder = "[^"]*"', rf'\1folder = "{folder / "camera"}"', text, flags=re.S)
    text = re.sub(r'(?m)^(\[records\][^\[]*?)^folder = "[^"]*"', rf'\1folder = "{folder / "records"}"', text, flags=re.S)
    text = re.sub(r'(?m)^file = "([^"]*)"', lambda m: f'file = "{(config.parent / m.group(1)).resolve()}"', text)
    path = folder / "line.toml"
    path.write_text(text)
    return path


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _responder(port: int, chutes: list[int], stop: asyncio.Event) -> None:
    from drivers import LinkSettings, ScanEvent, open_link
    link = open_link("modbus", LinkSettings(port=port, poll_interval_s=0.002, timeout_s=0.2, heartbeat_interval_s=0.1))
    await link.start()
    try:
        while not stop.is_set():
            try:
                ev = await asyncio.wait_for(link.events.get(), 0.2)
            except asyncio.TimeoutError:
                continue
            if isinstance(ev, ScanEvent):
                await link.assign(ev.tracking, chutes[ev.tracking % len(chutes)], 1)
    finally:
        await asyncio.wait_for(link.stop(), 5.0)


async def _divert(args, folder: Path) -> dict:
    from edge.config import load_config
    port = _free_port()
    config_path = _line_config(folder, Path(args.config).resolve(), port)
    config = load_config(config_path)
    report_path = folder / "report.json"
    camera = "off" if args.controller == "responder" and args.camera == "off" else args.camera
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(config_path), "--parcels", str(args.parcels),
        "--rate", str(args.rate), "--arrivals", args.arrivals, "--seed", str(args.seed), "--camera", camera,
        "--label-cache", args.label_cache, "--report", str(report_path),
        *(["--no-realtime"] if args.no_realtime else []), cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    stop = asyncio.Event()
    started = time.monotonic()
    try:
        if args.controller == "responder":
            side = [c.number for c in config.geometry.chutes if c.side != "end"]
            controller = asyncio.create_task(_responder(port, side, stop))
        else:
            controller = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "edge.cli", "run", "--config", str(config_path), cwd=REPO,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        code = await sim.wait()
    finally:
        stop.set()
        if args.controller == "responder":
            await asyncio.gather(controller, return_exceptions=True)
        elif controller.returncode is None:
            controller.terminate()
            await asyncio.wait_for(controller.wait(), 30)
        if sim.returncode is None:
            sim.terminate()
            await sim.wait()
    if code != 0:
        raise SystemExit(f"the simulator exited with status {code}")
    report = json.loads(report_path.read_text())
    return {
        "bench": "sim-divert", "controller": args.controller, "camera": camera, "parcels": report["parcels"],
        "realtime": not args.no_realtime,
        "rate_per_h": args.rate, "arrivals": args.arrivals,
        "belt_speed_m_s": config.geometry.belt_speed_m_s, "wall_s": round(time.monotonic() - started, 1),
        "divert_error_ms": report["divert_error_ms"], "assign_latency_ms": report["assign_latency_ms"],
        "by_reason": report["by_reason"], "lost": report["lost"], "camera_stats": report["camera"],
        "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
    }


async def _camera(args, folder: Path) -> dict:
    """Per-image cost in full and on layouts, background throughput, and the cost of a cache hit."""
    from ..camera import FolderCamera, LabelImages, render_jpeg
    from ..label_render import build_layout
    from ..labels import label_stream
    from fastpath import load_plan
    from edge.config import load_config
    config = load_config(args.config)
    plan = load_plan(config.resolve(config["plan"]["file"]), n_chutes=len(config.geometry.chutes))
    stream = label_stream(plan, args.seed, 0.0, 0.04)
    labels = [next(stream) for _ in range(args.images)]

    def ms(fn, *a):
        t0 = time.process_time()
        fn(*a)
        return (time.process_time() - t0) * 1000

    full = [ms(render_jpeg, label, args.seed, i) for i, label in enumerate(labels[:8])]
    layout_build = [ms(build_layout, "SF", "clean", k) for k in range(4)]
    layouts = folder / "cache"
    layouts.mkdir()
    for i, label in enumerate(labels):             # builds and stores every layout these parcels use
        render_jpeg(label, args.seed, i, args.layouts, layouts)
    patched = [ms(render_jpeg, label, args.seed, i, args.layouts, layouts) for i, label in enumerate(labels)]
    images = LabelImages(args.seed, layouts, workers=args.workers, layouts=args.layouts)
    t0 = time.perf_counter()
    await images.prepare(labels)
    cold_s = time.perf_counter() - t0
    images.close()
    warm = LabelImages(args.seed, layouts, workers=args.workers, layouts=args.layouts)
    camera = FolderCamera(folder / "camera")
    hits = []
    for i, label in enumerate(labels):
        t0 = time.perf_counter()
        warm.request(i, label)
        camera.drop(i + 1, warm.ready(i))
        hits.append((time.perf_counter() - t0) * 1e6)
    warm.close()
    size = statistics.mean(p.stat().st_size for p in layouts.glob("*.jpg"))
    per_image_s = cold_s / len(labels)
    n_layouts = 8 * args.layouts
    return {
        "bench": "sim-camera", "images": len(labels), "workers": args.workers, "layouts_per_courier": args.layouts,
        "full_render_cpu_ms_p50": round(statistics.median(full), 1),
        "layout_build_cpu_ms_p50": round(statistics.median(layout_build), 1),
        "on_layout_cpu_ms_p50": round(statistics.median(patched), 1),
        "speedup_on_layout": round(statistics.median(full) / statistics.median(patched), 2),
        "pool_wall_s_per_image": round(per_image_s, 4),
        "pool_wall_s_incl_worker_start": round(cold_s, 2),
        "cache_hit_and_drop_us_p50": round(statistics.median(hits), 1),
        "jpeg_kb_mean": round(size / 1024, 1),
        "estimate_5000_parcels_cold_s": round((n_layouts * statistics.median(layout_build) / 1000
                                               + 5000 * statistics.median(patched) / 1000) / args.workers),
        "estimate_5000_parcels_full_render_s": round(5000 * statistics.median(full) / 1000 / args.workers),
        "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
    }


async def _loop(args) -> dict:
    """How late an event loop wakes from a 5 ms sleep on this machine: what diverter timers are up against."""
    granted = "normal priority"
    if args.realtime:
        from ..realtime import request_realtime
        granted = request_realtime()
    loop = asyncio.get_running_loop()
    late, end = [], loop.time() + args.seconds
    while loop.time() < end:
        due = loop.time() + 0.005
        await asyncio.sleep(0.005)
        late.append((loop.time() - due) * 1000)
    late.sort()
    n = len(late)
    return {"bench": "loop-wakeup", "scheduling": granted, "wakeups": n,
            "late_ms_p50": round(late[n // 2], 3), "late_ms_p99": round(late[int(n * 0.99)], 3),
            "late_ms_p999": round(late[int(n * 0.999)], 3), "late_ms_max": round(late[-1], 3),
            "over_5ms": sum(v > 5 for v in late), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}


def _in_scratch(prefix: str, bench):
    """Run `bench(folder)` in a scratch folder that is removed afterwards (it can hold a GB of images)."""
    async def run(args):
        folder = Path(tempfile.mkdtemp(prefix=prefix))
        try:
            return await bench(args, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim_plc.bench.timing", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    d = sub.add_parser("divert", help="divert timing over a run")
    d.add_argument("--config", default=str(REPO / "configs" / "county-24.toml"))
    d.add_argument("--parcels", type=int, default=1000)
    d.add_argument("--rate", type=float, default=12000.0)
    d.add_argument("--arrivals", choices=("fixed", "poisson"), default="fixed")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--controller", choices=("responder", "real"), default="responder")
    d.add_argument("--camera", choices=("off", "ahead", "all"), default="off",
                   help="label images (the real controller needs them: ahead by default)")
    d.add_argument("--label-cache", default="none", help="'none': render everything afresh")
    d.add_argument("--no-realtime", action="store_true", help="run the simulator at normal priority")
    c = sub.add_parser("camera", help="what rendering label images costs")
    c.add_argument("--config", default=str(REPO / "configs" / "county-24.toml"))
    c.add_argument("--images", type=int, default=40)
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--layouts", type=int, default=16)
    c.add_argument("--seed", type=int, default=1)
    lp = sub.add_parser("loop", help="event-loop wake-up lateness")
    lp.add_argument("--seconds", type=float, default=30.0)
    lp.add_argument("--realtime", action="store_true", help="ask for real-time scheduling first, as `sortline sim` does")
    args = parser.parse_args(argv)
    if args.what == "divert" and args.controller == "real" and args.camera == "off":
        args.camera = "ahead"
    benches = {"divert": _in_scratch("sortline-bench-sim-", _divert),
               "camera": _in_scratch("sortline-bench-cam-", _camera), "loop": _loop}
    result = asyncio.run(benches[args.what](args))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
