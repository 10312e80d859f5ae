"""A TCP proxy on loopback that makes a local S3 behave like S3 seen from Lambda: ``python
bench/proxy.py UPSTREAM_PORT RATE_BYTES_PER_SECOND DELAY_SECONDS`` prints the port it listens on.

Each connection gets its own cap on the bytes it receives (S3 gives one GET stream about 50-100
MB/s in Lambda; the benchmark uses 40 MB/s), and each response's first byte is held back by the
delay (S3's time to first byte). A response is whatever the server sends after the client last
sent something (boto3 never pipelines requests). Requests go upstream unthrottled. The pacing
lets no credit build up while a connection idles, so every response starts at the cap.

Why ``os.splice``: the benchmark's processes share one small machine, and a proxy that copied
every byte through Python (an asyncio one did) spent about 3 s of CPU per GB, on the core next to
the function it measures: that is the network's cost, which real S3 does not put on a Lambda's
host. Spliced, the bytes move socket to pipe to socket inside the kernel; Python only paces.
Linux only, like the cgroups the benchmark uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import threading
import time

#: Bytes moved, and paced, at a time: 256 KiB is 6.6 ms at 40 MB/s.
PIECE = 256 * 1024
#: How far behind its schedule a connection may catch up after a late wake-up.
CATCH_UP = 0.005
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class Connection:
    """One client connection and its upstream: a thread a direction."""

    def __init__(self, client: socket.socket, server: socket.socket, rate: float, delay: float):
        self.client = client
        self.server = server
        self.rate = rate
        self.delay = delay
        self.awaiting_response = False

    def upstream(self) -> None:
        """Client to server: as fast as it comes; marks that a response is due."""
        with contextlib.suppress(OSError):
            while data := self.client.recv(PIECE):
                self.awaiting_response = True
                self.server.sendall(data)
        _close(self.server)

    def downstream(self) -> None:
        """Server to client: the first byte of each response delayed, then paced at the rate."""
        pipe_r, pipe_w = os.pipe()
        fcntl.fcntl(pipe_w, _F_SETPIPE_SZ, PIECE)
        due = 0.0
        try:
            # Blocks until the server sends something; 0 is the end of the connection.
            while moved := os.splice(self.server.fileno(), pipe_w, PIECE):
                now = time.monotonic()
                if self.awaiting_response:
                    self.awaiting_response = False
                    time.sleep(self.delay)
                    due = now + self.delay
                # Late wake-ups are made up within a few milliseconds (the cap holds on
                # average), but an idle connection gains no credit.
                due = max(due, time.monotonic() - CATCH_UP) + moved / self.rate
                while moved:
                    moved -= os.splice(pipe_r, self.client.fileno(), moved)
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
        except OSError:
            pass
        finally:
            os.close(pipe_r)
            os.close(pipe_w)
            _close(self.client)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def serve(upstream_port: int, rate: float, delay: float) -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    print(listener.getsockname()[1], flush=True)
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection(("127.0.0.1", upstream_port))
        except OSError:
            client.close()
            continue
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(client, server, rate, delay)
        threading.Thread(target=connection.upstream, daemon=True).start()
        threading.Thread(target=connection.downstream, daemon=True).start()


def main() -> None:
    upstream_port, rate, delay = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    serve(upstream_port, rate, delay)


if __name__ == "__main__":
    main()
