"""/metrics on an address of its own ([metrics] listen), for Prometheus.

The line screen may need a login; a scraper has none, so it gets its own small server that answers
GET /metrics and nothing else. It runs on the controller's event loop: the figures are read
between two parcels, and a loop that hangs stops answering scrapes, which the `up` alert sees.
"""
import ipaddress
import logging
from typing import Any

log = logging.getLogger("sortline.metrics")

MAX_REQUEST_BYTES = 1024             # a scrape sends a GET with a few headers
SHUTDOWN_S = 1.0


class ListenError(ValueError):
    """A [metrics] listen value that is not an IP address and a port; the text says which part."""


def parse_listen(text: str) -> tuple[str, int]:
    """("127.0.0.1", 9108) from "127.0.0.1:9108"; IPv6 in brackets: "[::1]:9108"."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ListenError("not an address and a port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ListenError(f"{host!r} is not an IP address") from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ListenError(f"port {port_text!r} is not a whole number from 1 to 65535")
    return host, int(port_text)


class MetricsServer:
    def __init__(self, metrics, host: str, port: int):
        self.metrics, self.host, self.port = metrics, host, port
        self._runner: Any = None

    async def start(self) -> None:
        from aiohttp import web
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.add_routes([web.get("/metrics", self._scrape), web.get("/", self._index)])
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"/metrics cannot listen on {self.host}:{self.port}: {exc.strerror}; choose "
                                     "another [metrics] listen in the line config") from None
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("metrics for Prometheus on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _scrape(self, request):
        from aiohttp import web
        from .metrics import CONTENT_TYPE
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE,
                                                                      "Cache-Control": "no-store"})

    async def _index(self, request):
        from aiohttp import web
        return web.Response(text="sortline: the figures are at /metrics\n")


async def start_metrics(controller) -> MetricsServer | None:
    """The metrics server of `sortline run`; one that cannot start must not stop the sorting."""
    section = controller.config["metrics"]
    if not section["enabled"]:
        return None
    host, port = parse_listen(section["listen"])
    server = MetricsServer(controller.metrics, host, port)
    try:
        await server.start()
    except OSError as exc:
        log.error("%s; the line keeps sorting, without metrics", exc)
        return None
    return server
