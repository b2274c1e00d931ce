"""How late the screen's event loop runs under a connection flood: the screen's listener against
asyncio's own server refusing the same connections (closed in connection_made, once asyncio has
built their transport and task, as the screen first did).

    python -m tests.web.flood_bench [--seconds 8] [--sockets 300]

A client process keeps `--sockets` connections going from one address, each opened again as soon
as the server closes it; the server admits 32 (the per-address cap) and closes the rest. A 10 ms
timer on the server's loop measures how late it runs. Prints JSON, one entry per server.
"""
import argparse
import asyncio
import json
import logging
import subprocess
import sys
import time

FLOOD = """
import asyncio, socket, sys, time
port, n, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])

async def one(stop):
    loop = asyncio.get_running_loop()
    while time.monotonic() < stop:
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 2)
            await asyncio.wait_for(loop.sock_recv(sock, 10), 0.5)
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            sock.close()

async def flood():
    stop = time.monotonic() + seconds
    await asyncio.gather(*(one(stop) for _ in range(n)))

asyncio.run(flood())
"""


class _RefusedByAsyncio(asyncio.Protocol):
    """The same caps, applied once asyncio has built the connection's transport and task."""

    def __init__(self, guard):
        self.guard, self.handler, self.client = guard, None, None

    def connection_made(self, transport):
        client = transport.get_extra_info("peername")[0]
        why = self.guard.admit(client)
        if why is not None:
            transport.abort()
            self.guard.on_refused(client, why)
            return
        self.client, self.handler = client, self.guard.server()
        self.handler.connection_made(transport)

    def data_received(self, data):
        if self.handler is not None:
            self.handler.data_received(data)

    def eof_received(self):
        return self.handler.eof_received() if self.handler is not None else None

    def connection_lost(self, exc):
        if self.handler is not None:
            self.guard.release(self.client)
            self.handler.connection_lost(exc)


async def measure(screen_listener: bool, seconds: float, sockets: int) -> dict:
    from aiohttp import web

    from edge.web import server
    app = web.Application()
    app.router.add_get("/", lambda request: web.Response(text="ok"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    refused = [0]

    def count(*_):
        refused[0] += 1
    guard = server.ConnectionGuard(runner.server, server.MAX_CONNECTIONS, server.MAX_CONNECTIONS_PER_CLIENT,
                                   server.HEADER_TIMEOUT_S, count, lambda *_: None)
    loop = asyncio.get_running_loop()
    if screen_listener:
        listener = server._Listener("127.0.0.1", 0, guard, server.LogThrottle(logging.getLogger("bench")))
    else:
        listener = await loop.create_server(lambda: _RefusedByAsyncio(guard), "127.0.0.1", 0,
                                            backlog=server.BACKLOG)
    port = listener.sockets[0].getsockname()[1]
    client = subprocess.Popen([sys.executable, "-c", FLOOD, str(port), str(sockets), str(seconds)])
    late_ms = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = loop.time()
        await asyncio.sleep(0.01)
        late_ms.append((loop.time() - t0 - 0.01) * 1000)
    client.wait()
    listener.close()
    await runner.cleanup()
    late_ms.sort()
    return {"server": "screen listener" if screen_listener else "asyncio server, refusing in connection_made",
            "refused_per_s": round(refused[0] / seconds),
            "timer_late_ms": {"p50": round(late_ms[len(late_ms) // 2], 2),
                              "p99": round(late_ms[int(len(late_ms) * 0.99)], 2), "max": round(late_ms[-1], 2)}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--sockets", type=int, default=300)
    args = parser.parse_args(argv)
    result = [asyncio.run(measure(listener, args.seconds, args.sockets)) for listener in (True, False)]
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
