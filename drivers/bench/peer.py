"""The simulated PLC side of `sortline bench link`, in its own process.

Serves one PLC model over Modbus TCP or OPC UA on 127.0.0.1 and takes commands, one JSON object per
line on stdin, answering one JSON line on stdout. Times are host monotonic seconds, which every
process on the machine shares, so the bench can set its own receive times against them.

    {"cmd": "paced", "n": 2000, "gap_s": 0.005}  parcels at a fixed pitch; each one's scan and assignment time
    {"cmd": "window", "n": 2000, "window": 8}    a new parcel whenever fewer than `window` wait for a chute
    {"cmd": "quit"}
"""
import argparse
import asyncio
import json
import sys
from pathlib import Path

from .. import regmap as rm

WAIT_FOR_ASSIGNMENTS_S = 3.0


def geometry():
    from edge.line_geometry import Chute, LineGeometry
    # A long way to the first diverter (1.9 s at 2 m/s), so that no assignment of the bench is late.
    return LineGeometry(belt_speed_m_s=2.0, switch_time_s=0.1, plc_margin_s=0.02,
                        chutes=(Chute(1, 4.0, "left"), Chute(2, 4.0, "right"), Chute(3, 5.0, "end")), end_chute=3)


async def paced(model, n: int, gap_s: float) -> dict:
    loop = asyncio.get_running_loop()
    parcels, seqs = [], []
    next_s = loop.time()
    for _ in range(n):
        await asyncio.sleep(max(0.0, next_s - loop.time()))
        next_s += gap_s
        parcels.append(model.scan())
        seqs.append(rm.join_u32(*model.regs[model.map.plc(rm.PLC_SCAN_SEQ):][:2]))
    deadline = loop.time() + WAIT_FOR_ASSIGNMENTS_S
    while loop.time() < deadline and any(p.assigned_at_s is None for p in parcels):
        await asyncio.sleep(0.01)
    return {"parcels": [[p.tracking, seq, p.scan_time_s, p.assigned_at_s] for p, seq in zip(parcels, seqs)]}


async def window(model, n: int, size: int) -> dict:
    loop = asyncio.get_running_loop()
    parcels, waiting = [], []
    t0 = loop.time()
    deadline = t0 + 60.0
    while len(parcels) < n and loop.time() < deadline:
        waiting = [p for p in waiting if p.assigned_at_s is None]
        while len(waiting) < size and len(parcels) < n:
            p = model.scan()
            parcels.append(p)
            waiting.append(p)
        await asyncio.sleep(0.0002)          # the peer must not eat the core the link runs on
    while loop.time() < deadline and any(p.assigned_at_s is None for p in parcels):
        await asyncio.sleep(0.001)
    done = [p for p in parcels if p.assigned_at_s is not None]
    elapsed_s = max(p.assigned_at_s for p in done) - t0 if done else None
    return {"assigned": len(done), "elapsed_s": elapsed_s,
            "parcels": [[p.tracking, 0, p.scan_time_s, p.assigned_at_s] for p in parcels]}


async def serve(args) -> None:
    from sim_plc.chutes import ChuteSettings
    from sim_plc.plc import SimPlc
    plc = SimPlc(geometry(), port=args.port, modbus=args.protocol == "modbus", heartbeat_timeout_s=1.0,
                 chutes=ChuteSettings(capacity=None))
    opcua = None
    if args.protocol == "opcua":
        from sim_plc.opcua_server import OpcUaPlcServer, ServerSecurity
        security = None
        if args.pki:
            pki = Path(args.pki)
            security = ServerSecurity(pki / "plc.der", pki / "plc.pem", trusted_clients=(pki / "controller.der",),
                                      users={"bench": "bench"})
        opcua = OpcUaPlcServer("127.0.0.1", args.port, security=security)
        opcua.bind_model(plc.model)
        plc.add_server(opcua)
    async with plc:
        print(json.dumps({"ready": True}), flush=True)
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            cmd = json.loads(line)
            if cmd["cmd"] == "quit":
                break
            if cmd["cmd"] == "paced":
                answer = await paced(plc.model, cmd["n"], cmd["gap_s"])
            elif cmd["cmd"] == "window":
                answer = await window(plc.model, cmd["n"], cmd["window"])
            else:
                answer = {"error": f"unknown command {cmd['cmd']!r}"}
            print(json.dumps(answer), flush=True)
    if opcua is not None:
        await opcua.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.bench.peer", description=__doc__)
    parser.add_argument("--protocol", choices=("modbus", "opcua"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pki", default="", help="OPC UA: folder with plc.der/.pem and controller.der (security on)")
    args = parser.parse_args(argv)
    import logging
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
