"""`sortline bench soak`: the simulated PLC and the controller for an hour, with a fault every few
minutes, as a line meets them in its first months; prints what was lost, duplicated and late
outside the faults' own windows, and whether the controller's resources stay flat (JSON).

    sortline bench soak --minutes 60 --rate 40000 --json

The faults, in turn, every `--fault-every-s` seconds: every PLC connection dropped; a PLC restart
(new boot id); the camera silent; the records disk full; another process holding a write lock on
the records; a flood of idle and slow connections to the line screen. A parcel counts against the
controller only if it was scanned outside every fault's window (from the fault's start to
`RECOVERY_S` after its end). Resources (the controller's memory, file descriptors, threads, the
longest hold of its event loop from /metrics) are sampled every 10 s; the first ten minutes are
printed beside the last ten.
"""
import argparse
import asyncio
import collections
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .e2e import _feed_args, _free_port, bench_config, stop_both
from ..config_copy import derive_config

RECOVERY_S = 5.0             # after a fault ends: reconnect, a restarted PLC's heartbeat check, the camera's next image
SAMPLE_EVERY_S = 10.0
FAULTS = ("drop", "restart", "camera", "disk-full", "records-lock", "screen-flood")
FAULT_S = {"drop": 0.5, "restart": 2.0, "camera": 10.0, "disk-full": 20.0, "records-lock": 10.0, "screen-flood": 20.0}
RECORDS_FS_MB = 256
FLOOD_CONNECTIONS = 2000


# -- what is sampled ----------------------------------------------------------------------------------
def _proc_status(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            out[key] = int(value.split()[0])
    return out


def _sample(pid: int, metrics_url: str) -> dict:
    status = _proc_status(pid)
    sample = {"t_s": time.monotonic(), "rss_mb": round(status["VmRSS"] / 1024, 1), "threads": status["Threads"],
              "fds": len(os.listdir(f"/proc/{pid}/fd")), "loop_held_ms": None}
    with contextlib.suppress(OSError, ValueError):
        import urllib.request
        text = urllib.request.urlopen(metrics_url, timeout=2).read().decode()
        for line in text.splitlines():
            if line.startswith("sortline_event_loop_held_seconds "):
                sample["loop_held_ms"] = round(float(line.split()[1]) * 1000, 1)
    return sample


def _summary(samples: list[dict], first: bool, window_s: float) -> dict:
    if not samples:
        return {}
    t0, t1 = samples[0]["t_s"], samples[-1]["t_s"]
    part = [s for s in samples if (s["t_s"] - t0 <= window_s if first else t1 - s["t_s"] <= window_s)]

    def median(key):
        values = sorted(s[key] for s in part if s[key] is not None)
        return values[len(values) // 2] if values else None

    def top(key):
        values = [s[key] for s in part if s[key] is not None]
        return max(values) if values else None
    return {"samples": len(part), "rss_mb_median": median("rss_mb"), "rss_mb_max": top("rss_mb"),
            "fds_median": median("fds"), "fds_max": top("fds"), "threads_median": median("threads"),
            "threads_max": top("threads"), "loop_held_ms_median": median("loop_held_ms"),
            "loop_held_ms_max": top("loop_held_ms")}


# -- faults the controller's surroundings make ---------------------------------------------------------
class Surroundings:
    """Faults from outside the PLC: the records disk, another process, clients of the screen."""

    def __init__(self, workdir: Path, screen_port: int):
        self.records = workdir / "records"
        self.screen_port = screen_port
        self.small_disk = False

    def mount_records_disk(self) -> bool:
        """The records on a file system of their own that can be filled (root only)."""
        self.records.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return False
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={RECORDS_FS_MB}m", "tmpfs", str(self.records)],
                              capture_output=True)
        self.small_disk = done.returncode == 0
        return self.small_disk

    def unmount(self) -> None:
        if self.small_disk:
            subprocess.run(["umount", "-l", str(self.records)], capture_output=True)

    async def disk_full(self, seconds: float) -> None:
        filler = self.records / "filler.bin"
        with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
            block = b"\0" * (1 << 20)
            while True:
                f.write(block)
        await asyncio.sleep(seconds)
        filler.unlink()

    async def records_lock(self, seconds: float) -> None:
        """Another program (a DB browser, a backup) holding the write lock."""
        script = ("import sqlite3, sys, time\n"
                  "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                  "db.execute('BEGIN IMMEDIATE')\n"
                  "time.sleep(float(sys.argv[2]))\n")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script,
                                                    str(self.records / "parcels.sqlite"), str(seconds))
        await proc.wait()

    async def screen_flood(self, seconds: float) -> None:
        """Idle connections and slow ones that send a header byte a second: what a port scanner or a
        broken client does."""
        socks = []
        loop = asyncio.get_running_loop()
        for i in range(FLOOD_CONNECTIONS):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(OSError):
                await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", self.screen_port)), 1.0)
                if i % 10 == 0:
                    s.send(b"GET / HTTP/1.1\r\n")
            socks.append(s)
        end = loop.time() + seconds
        while loop.time() < end:
            await asyncio.sleep(1.0)
            for s in socks[::10]:
                with contextlib.suppress(OSError):
                    s.send(b"X")
        for s in socks:
            s.close()


# -- the run --------------------------------------------------------------------------------------------
def _schedule(minutes: float, every_s: float) -> list[tuple[float, str]]:
    """(seconds after the start, fault), in turn, from the first interval on."""
    out, t, i = [], every_s, 0
    while t < minutes * 60 - every_s / 2:
        out.append((t, FAULTS[i % len(FAULTS)]))
        t += every_s
        i += 1
    return out


def _outside(windows: list[tuple[float, float]], t: float, on_belt_s: float) -> bool:
    """Scanned outside every fault's window: from a belt's length before it began (parcels on the
    belt then are the fault's too) to RECOVERY_S after it ended."""
    return not any(a - on_belt_s <= t <= b + RECOVERY_S for a, b in windows)


def _on_belt_s(config: Path) -> float:
    """From the scan point to the end chute, and a second more: the simulated PLC makes a fault
    after the parcel it is scripted at, and a parcel lands a moment after it reaches the chute."""
    import tomllib
    line = tomllib.loads(config.read_text())["line"]
    return max(c["position_m"] for c in line["chutes"]) / line["belt_speed_m_s"] + 1.0


async def soak(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="sortline-soak-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    screen_port = _free_port()
    around = Surroundings(workdir, screen_port)
    disk = around.mount_records_disk()
    config = bench_config(args.config, workdir, "modbus", args.budget_ms, preadvice_records=2000)
    config = derive_config(config, config, {"screen": {"enabled": True, "port": screen_port,
                                                       "token_file": str(workdir / "tokens.txt")}})
    on_belt_s = _on_belt_s(config)
    parcels = round(args.rate * args.minutes / 60)
    fault_at = {"drop": "drop", "restart": "restart:%g" % FAULT_S["restart"], "camera": "camera:%g" % FAULT_S["camera"]}
    plan = _schedule(args.minutes, args.fault_every_s)
    # The PLC's own faults go to the simulator by parcel count (it knows its rate); the others are
    # made here at the same moments.
    sim_faults = [f"{round(t * args.rate / 3600)}:{fault_at[kind]}" for t, kind in plan if kind in fault_at]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    report_path = workdir / "report.json"
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge.cli", "sim", "--config", str(config), "--parcels", str(parcels),
        "--rate", str(args.rate), "--seed", str(args.seed), "--report", str(report_path), "--camera", "ahead",
        "--no-label-share", "0", "--unknown-route-share", "0", *_feed_args(config, args.rate),
        *[a for f in sim_faults for a in ("--fault", f)],
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env)
    log_path = workdir / "controller.log"
    with open(log_path, "wb") as log_file:
        ctl = await asyncio.create_subprocess_exec(sys.executable, "-m", "edge.cli", "run", "--config", str(config),
                                                   stdout=log_file, stderr=log_file, env=env)
    windows: list[tuple[float, float]] = []
    samples: list[dict] = []
    applied: list[dict] = []
    started = asyncio.Event()
    sim_log: list[str] = []

    async def read_sim():
        while line := await sim.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            sim_log.append(text)
            del sim_log[:-200]
            if "controller heartbeat present" in text:
                started.set()

    async def sample_forever():
        url = f"http://127.0.0.1:{screen_port}/metrics"
        while True:
            with contextlib.suppress(OSError, KeyError, ValueError):
                samples.append(await asyncio.to_thread(_sample, ctl.pid, url))
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def faults_forever(t0: float):
        loop = asyncio.get_running_loop()
        for at_s, kind in plan:
            await asyncio.sleep(max(0.0, t0 + at_s - loop.time()))
            start = time.monotonic()
            if kind == "disk-full":
                if not disk:
                    applied.append({"fault": kind, "skipped": "needs root to mount a small file system"})
                    continue
                await around.disk_full(FAULT_S[kind])
            elif kind == "records-lock":
                await around.records_lock(FAULT_S[kind])
            elif kind == "screen-flood":
                await around.screen_flood(FAULT_S[kind])
            else:
                continue      # the simulator makes it, at this parcel count, and reports it
            windows.append((start, time.monotonic()))
            applied.append({"fault": kind, "at_s": round(at_s, 1), "lasted_s": round(time.monotonic() - start, 1)})

    reader = asyncio.create_task(read_sim())
    tasks = []
    try:
        async with asyncio.timeout(args.minutes * 60 + 600):
            await started.wait()
            t0 = asyncio.get_running_loop().time()
            tasks = [asyncio.create_task(sample_forever()), asyncio.create_task(faults_forever(t0))]
            await sim.wait()
        await reader
    finally:
        for task in tasks:
            task.cancel()
        await stop_both(ctl, sim, 30)
    try:
        if sim.returncode != 0 or not report_path.exists():
            raise SystemExit("the simulated PLC failed:\n" + "\n".join(sim_log[-30:]))
        report = json.loads(report_path.read_text())
        duplicated = _duplicated_rows(workdir / "records" / "parcels.sqlite")
        log_lines = log_path.read_text(errors="replace").splitlines()
    finally:
        around.unmount()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    # The simulator's restarts and drops are windows too: from the moment it made them (on the
    # records' clock), not from the scan of the parcel whose count triggered them.
    rows = report["records"]
    for fault in report.get("faults", []):
        kind = fault["fault"].split(":")[1]
        if kind in fault_at and "scan_s" in fault:
            windows.append((fault["scan_s"], fault["scan_s"] + FAULT_S[kind]))
    late = [r for r in rows if r["result"] in ("LATE", "NO_HEARTBEAT")]
    lost = [r for r in rows if r["result"] in (None, "LOST")]
    late_outside = [r for r in late if _outside(windows, r["scan_s"], on_belt_s)]
    lost_outside = [r for r in lost if _outside(windows, r["scan_s"], on_belt_s)]
    return {
        "minutes": args.minutes, "rate_per_h": args.rate, "parcels": report["parcels"],
        "fault_window_s": {"before": round(on_belt_s, 2), "after": RECOVERY_S},
        "faults": applied + report.get("faults", []),
        "lost": len(lost), "lost_outside_faults": len(lost_outside),
        "duplicated": duplicated, "plc_refused": report.get("plc_refused", {}),
        "late": len(late), "late_outside_faults": len(late_outside),
        "late_outside_examples": [{k: r[k] for k in ("tracking", "scan_s", "result", "assign_ms")}
                                  for r in late_outside[:10]],
        "by_reason": report["by_reason"],
        "lost_why": dict(collections.Counter(r.get("why") for r in lost)),
        "rss_mb_per_10_min": _per_block(samples, "rss_mb", 600),
        "resources_first_10_min": _summary(samples, True, 600),
        "resources_last_10_min": _summary(samples, False, 600),
        "controller_log_lines": len(log_lines),
        "controller_tracebacks": sum(1 for line in log_lines if line.startswith("Traceback")),
        **({"kept_files": str(workdir)} if args.keep else {}),
    }


def _per_block(samples: list[dict], key: str, block_s: float) -> list:
    """The median of `key` in each block of the run: a plateau shows here, a leak keeps climbing."""
    if not samples:
        return []
    t0, blocks = samples[0]["t_s"], {}
    for s in samples:
        if s[key] is not None:
            blocks.setdefault(int((s["t_s"] - t0) // block_s), []).append(s[key])
    return [sorted(v)[len(v) // 2] for _, v in sorted(blocks.items())]


def _duplicated_rows(db_path: Path) -> int:
    """Parcels the controller decided twice: two rows for one (boot id, tracking) scanned minutes apart
    would be a reused number; within a belt's time they are one parcel decided twice."""
    db = sqlite3.connect(db_path)
    try:
        return db.execute("SELECT COUNT(*) FROM (SELECT plc_boot, tracking FROM parcels GROUP BY plc_boot, tracking"
                          " HAVING COUNT(*) > 1 AND MAX(scanned_wall) - MIN(scanned_wall) < 600)").fetchone()[0]
    finally:
        db.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline bench soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/county-24.toml")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=40000.0, help="parcels per hour")
    parser.add_argument("--fault-every-s", type=float, default=150.0, help="seconds between two faults")
    parser.add_argument("--budget-ms", type=float, default=250.0, help="decision budget after the scan")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the run's files and print where")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    result = asyncio.run(soak(args))
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
