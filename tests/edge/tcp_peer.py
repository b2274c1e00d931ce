"""The device's side of a TCP input (edge/tcp_input.py) on 127.0.0.1, for the code reader's and the
scale's tests: a server the controller connects to in client mode, and a bounded wait for what
the controller makes of what it sends."""
import asyncio
import time


class Peer:
    """A device's TCP server: each test writes to whichever controller connected last."""

    def __init__(self):
        self.writers: list[asyncio.StreamWriter] = []
        self.connected = asyncio.Event()

    async def serve(self, port: int):
        self.server = await asyncio.start_server(self._on, "127.0.0.1", port)

    async def _on(self, reader, writer):
        self.writers.append(writer)
        self.connected.set()
        try:
            await reader.read()
        finally:
            writer.close()

    def send(self, data: bytes) -> None:
        self.writers[-1].write(data)

    async def close(self):
        for w in self.writers:
            w.close()
        self.server.close()
        await self.server.wait_closed()


async def until(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
