"""`sortline bench link`: the PLC link against the simulated PLC in another process, on loopback.

    sortline bench link --protocol modbus --json
    sortline bench link --protocol opcua --json [--security]

Prints, from one run: event-to-assignment round trip (scan event published by the PLC to the
assignment taken by the PLC) p50/p99/p99.9 at a steady pace, events/s with a window of parcels in
flight, the effect of poll_interval_ms (Modbus), and the bare library measured the same way against
the same PLC (pymodbus: read of 10 registers; asyncua: subscription at publishing interval 0, PLC
change to client callback). Times are host monotonic, shared by both processes.
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..link import LinkSettings, OpcUaSettings, ScanEvent, open_link


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values_ms) -> dict:
    if not len(values_ms):
        return {"n": 0}
    a = np.asarray(values_ms, dtype=float)
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 3), "p99": round(float(np.percentile(a, 99)), 3),
            "p99.9": round(float(np.percentile(a, 99.9)), 3), "max": round(float(a.max()), 3)}


class Peer:
    """The simulated PLC process and its command line."""

    def __init__(self, protocol: str, port: int, pki: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "drivers.bench.peer", "--protocol", protocol,
                                      "--port", str(port), "--pki", pki],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    async def ask(self, timeout_s: float = 120.0, **cmd) -> dict:
        if cmd:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout_s)
        if not line:
            raise RuntimeError(f"the simulated PLC exited with status {self.proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


async def with_link(protocol, settings, peer: Peer, cmd: dict) -> tuple[dict, dict, dict]:
    """Run one peer command with a link that assigns every scan event at once; return the peer's answer,
    the link's receive time per tracking number and the link's anomalies."""
    link = open_link(protocol, settings)
    received: dict[int, float] = {}
    sends: set[asyncio.Task] = set()

    async def assign_all():
        while True:
            ev = await link.events.get()
            if isinstance(ev, ScanEvent):
                received[ev.tracking] = ev.received_s
                sends.add(asyncio.create_task(link.assign(ev.tracking, 1, 1)))

    await link.start()
    consumer = asyncio.create_task(assign_all())
    try:
        await link.wait_connected(10.0)
        await asyncio.sleep(0.3)                 # heartbeats: the PLC takes assignments only from a live controller
        answer = await peer.ask(**cmd)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, *sends, return_exceptions=True)
        await link.stop()
    return answer, received, dict(link.status.anomalies)


def round_trips(answer: dict, received: dict) -> dict:
    parcels = answer["parcels"]
    total = [(a - s) * 1000 for _, _, s, a in parcels if a is not None]
    seen = [(received[t] - s) * 1000 for t, _, s, _ in parcels if t in received]
    return {"event_to_assignment_ms": pct(total), "event_to_link_ms": pct(seen),
            "not_assigned": sum(a is None for *_, a in parcels)}


async def bare_modbus(port: int, n: int) -> dict:
    from pymodbus.client import AsyncModbusTcpClient
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            rr = await client.read_holding_registers(0, count=10, device_id=1)
            times.append((time.perf_counter() - t0) * 1000)
            assert not rr.isError()
    finally:
        client.close()
    return {"read_10_registers_ms": pct(times), "reads_per_s": round(n / (sum(times) / 1000), 1)}


async def bare_opcua(port: int, peer: Peer, n: int, gap_s: float, opcua: OpcUaSettings) -> dict:
    from asyncua import Client, ua
    from asyncua.crypto import security_policies

    from .. import opcua_layout as lay
    client = Client(f"opc.tcp://127.0.0.1:{port}{opcua.path}", timeout=5)
    if opcua.security == "sign-and-encrypt":
        client.application_uri = "urn:sortline:controller"
        await client.set_security(security_policies.SecurityPolicyBasic256Sha256, opcua.certificate,
                                  opcua.private_key, server_certificate=opcua.server_certificate,
                                  mode=ua.MessageSecurityMode.SignAndEncrypt)
        client.set_user(opcua.username)
        client.set_password(opcua.password)
    await client.connect()
    seen: dict[int, float] = {}
    try:
        ns = await client.get_namespace_index(lay.NAMESPACE)
        node = await client.nodes.objects.get_child([f"{ns}:{lay.OBJECT}", f"{ns}:{lay.PLC_FOLDER}", f"{ns}:ScanSeq"])
        read_ms = []
        for _ in range(200):
            t0 = time.perf_counter()
            await node.read_value()
            read_ms.append((time.perf_counter() - t0) * 1000)
        sub = await client.create_subscription(0, None)
        await sub.subscribe_data_change(node, sampling_interval=0)

        async def watch():
            async for ev in sub:
                if hasattr(ev, "value") and isinstance(ev.value, int):
                    seen.setdefault(ev.value, time.monotonic())
        watcher = asyncio.create_task(watch())
        answer = await peer.ask(cmd="paced", n=n, gap_s=gap_s)
        await asyncio.sleep(0.2)
        watcher.cancel()
    finally:
        await client.disconnect()
    lat = [(seen[seq] - s) * 1000 for _, seq, s, _ in answer["parcels"] if seq in seen]
    return {"subscription_interval_0_ms": pct(lat), "missed_changes": n - len(lat), "read_one_value_ms": pct(read_ms)}


def make_pki(folder: Path) -> OpcUaSettings:
    from sim_plc.opcua_server import APPLICATION_URI

    from ..opcua_certs import make_certificate
    plc_cert, _ = make_certificate(folder, "plc", APPLICATION_URI, server=True)
    cert, key = make_certificate(folder, "controller", "urn:sortline:controller")
    return OpcUaSettings(path="/sorter/", security="sign-and-encrypt", certificate=str(cert), private_key=str(key),
                         server_certificate=str(plc_cert), auth="username", username="bench", password="bench")


async def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="sortline-bench-pki-") as pki:
        return await measure(args, pki if args.security else "")


async def measure(args, pki: str) -> dict:
    port = _free_port()
    opcua = make_pki(Path(pki)) if pki else OpcUaSettings(path="/sorter/")
    peer = Peer(args.protocol, port, pki)
    try:
        await peer.ask(timeout_s=60)            # ready
        base = dict(port=port, timeout_s=0.2, heartbeat_interval_s=0.1, opcua=opcua)
        gap_s = args.gap_ms / 1000
        report = {"protocol": args.protocol, "security": "sign-and-encrypt" if args.security else "none",
                  "events": args.events, "gap_ms": args.gap_ms, "cpus": os.cpu_count(),
                  "load_avg_1min_at_start": round(os.getloadavg()[0], 2)}
        answer, received, anomalies = await with_link(
            args.protocol, LinkSettings(poll_interval_s=args.poll_ms / 1000, **base), peer,
            {"cmd": "paced", "n": args.events, "gap_s": gap_s})
        report["link"] = {"poll_interval_ms": args.poll_ms if args.protocol == "modbus" else None,
                          **round_trips(answer, received), "anomalies": anomalies}
        answer, received, _ = await with_link(
            args.protocol, LinkSettings(poll_interval_s=args.poll_ms / 1000, **base), peer,
            {"cmd": "window", "n": args.events, "window": args.window})
        report["throughput"] = {"window": args.window, "assigned": answer["assigned"],
                                "events_per_s": round(answer["assigned"] / answer["elapsed_s"], 1)
                                if answer["elapsed_s"] else None, **round_trips(answer, received)}
        if args.protocol == "modbus":
            sweep = {}
            for poll_ms in args.poll_sweep:
                answer, received, _ = await with_link(
                    "modbus", LinkSettings(poll_interval_s=poll_ms / 1000, **base), peer,
                    {"cmd": "paced", "n": args.sweep_events, "gap_s": args.sweep_gap_ms / 1000})
                sweep[str(poll_ms)] = round_trips(answer, received)["event_to_assignment_ms"]
            report["poll_interval_ms_effect"] = {"gap_ms": args.sweep_gap_ms, **sweep}
            report["bare_pymodbus"] = await bare_modbus(port, args.events)
        else:
            report["poll_interval_ms_effect"] = "not used: OPC UA pushes changes (publishing interval 0)"
            report["bare_asyncua"] = await bare_opcua(port, peer, args.events, gap_s, opcua)
        return report
    finally:
        peer.close()


def print_text(r: dict) -> None:
    lk, th = r["link"], r["throughput"]
    print(f"PLC link over {r['protocol']} (security {r['security']}), {r['events']} events every {r['gap_ms']} ms")
    print(f"  event -> assignment taken by the PLC: {lk['event_to_assignment_ms']}")
    print(f"  event -> seen by the link:            {lk['event_to_link_ms']}")
    print(f"  events/s with {th['window']} in flight:       {th['events_per_s']}")
    print(f"  poll_interval_ms effect:              {r['poll_interval_ms_effect']}")
    print(f"  bare library:                         {r.get('bare_pymodbus') or r.get('bare_asyncua')}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sortline bench link", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=("modbus", "opcua"), default="modbus")
    parser.add_argument("--events", type=int, default=2000, help="parcels per measurement")
    parser.add_argument("--gap-ms", type=float, default=10.0, help="pitch of the paced measurements")
    parser.add_argument("--window", type=int, default=8, help="parcels in flight for events/s")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="Modbus poll_interval_ms of the main run")
    parser.add_argument("--poll-sweep", type=float, nargs="*", default=[0.5, 2, 5, 10, 20])
    parser.add_argument("--sweep-events", type=int, default=600, help="parcels per poll interval in the sweep")
    parser.add_argument("--sweep-gap-ms", type=float, default=10.0, help="pitch in the poll interval sweep")
    parser.add_argument("--security", action="store_true", help="OPC UA with SignAndEncrypt (Basic256Sha256)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.security and args.protocol != "opcua":
        parser.error("--security applies to --protocol opcua")
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_text(report)
    return 0
