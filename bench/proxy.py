"""A TCP proxy on loopback that makes a local S3 behave like S3 seen from Lambda: ``python
bench/proxy.py UPSTREAM_PORT RATE_BYTES_PER_SECOND DELAY_SECONDS`` prints the port it listens on.

Each connection gets its own cap on the bytes it receives (S3 gives one GET stream about 50-100
MB/s in Lambda; the benchmark uses 40 MB/s), and each response's first byte is held back by the
delay (S3's time to first byte). A response is whatever the server sends after the client last
sent something (boto3 never pipelines requests). Requests go upstream unthrottled. The pacing
lets no credit build up while a connection idles, so every response starts at the cap.
"""

from __future__ import annotations

import asyncio
import sys
import time

CHUNK = 256 * 1024
#: Pacing granularity, and how far behind its schedule a connection may catch up.
PIECE = 64 * 1024
CATCH_UP = 0.005


class Connection:
    """One client connection and its upstream: the state the two directions share."""

    def __init__(self, rate: float, delay: float) -> None:
        self.rate = rate
        self.delay = delay
        self.awaiting_response = False

    async def upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Client to server: as fast as it comes; marks that a response is due."""
        try:
            while data := await reader.read(CHUNK):
                self.awaiting_response = True
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def downstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Server to client: the first byte of each response delayed, then paced at the rate."""
        due = 0.0
        try:
            while data := await reader.read(CHUNK):
                now = time.monotonic()
                if self.awaiting_response:
                    self.awaiting_response = False
                    await asyncio.sleep(self.delay)
                    due = now + self.delay
                # Late wake-ups are made up within a few milliseconds (the cap holds on average),
                # but an idle connection gains no credit.
                due = max(due, time.monotonic() - CATCH_UP)
                for start in range(0, len(data), PIECE):
                    piece = data[start : start + PIECE]
                    due += len(piece) / self.rate
                    writer.write(piece)
                    await writer.drain()
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
        finally:
            writer.close()


async def serve(upstream_port: int, rate: float, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_w.close()
            return
        connection = Connection(rate, delay)
        await asyncio.gather(
            connection.upstream(client_r, server_w),
            connection.downstream(server_r, client_w),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=4 * CHUNK)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    upstream_port, rate, delay = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    asyncio.run(serve(upstream_port, rate, delay))


if __name__ == "__main__":
    main()
