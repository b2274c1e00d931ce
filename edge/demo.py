"""`sortline demo`: the simulated PLC in its own process, the controller here, one short shift."""
import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path


def print_summary(report: dict, out=sys.stdout) -> None:
    w = out.write
    lat = report["assign_latency_ms"]
    w("\nShift summary (from the simulated PLC's ground truth)\n")
    w(f"  parcels                      {report['parcels']:>8}\n")
    w(f"  accounted for (landed)       {report['landed']:>8}\n")
    w(f"  lost                         {report['lost']:>8}\n")
    w(f"  in the expected chute        {report['correct']:>8}\n")
    if report["clean_labels"]:
        w(f"  clean labels right           {report['clean_correct']:>8} of {report['clean_labels']}"
          f"  ({100 * report['clean_accuracy']:.2f} %)\n")
    w("  where parcels went, by reason:\n")
    for reason, n in report["by_reason"].items():
        w(f"    {reason:<26} {n:>8}\n")
    if lat["p50"] is not None:
        w(f"  scan to assignment in PLC    p50 {lat['p50']:.1f} ms   p99 {lat['p99']:.1f} ms"
          f"   max {lat['max']:.1f} ms\n")


async def _demo(config_path, parcels, rate, seed) -> int:
    from .run import build_controller
    from .config import load_or_exit
    config = load_or_exit(config_path)
    report_path = Path(tempfile.mkdtemp(prefix="sortline-demo-")) / "report.json"
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(config_path), "--parcels", str(parcels),
        "--rate", str(rate), "--seed", str(seed), "--report", str(report_path),
        stdout=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    await _wait_for_plc(config, sim)
    controller = build_controller(config)
    stop = asyncio.Event()
    run = asyncio.create_task(controller.run(stop))
    try:
        code = await sim.wait()
    finally:
        stop.set()
        await run
        controller.records.close()
    if code != 0:
        print(f"the simulated PLC exited with status {code}", file=sys.stderr)
        return 1
    report = json.loads(report_path.read_text())
    print_summary(report)
    print(f"  controller records: {controller.records.path}")
    return 0 if report["lost"] == 0 else 1


async def _wait_for_plc(config, sim, timeout_s: float = 300.0) -> None:
    """The simulator renders the shift's labels before it listens; start the controller after."""
    host, port = config["plc"]["host"], config["plc"]["port"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    print(f"waiting for the simulated PLC on {host}:{port} (it renders the shift's labels first)")
    while loop.time() < deadline and sim.returncode is None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
        except (OSError, asyncio.TimeoutError):
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline demo", description=__doc__)
    parser.add_argument("--config", default="configs/county-24.toml")
    parser.add_argument("--parcels", type=int, default=240)
    parser.add_argument("--rate", type=float, default=12000.0, help="parcels per hour")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    return asyncio.run(_demo(args.config, args.parcels, args.rate, args.seed))
