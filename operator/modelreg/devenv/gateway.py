"""The real node's way to the environment's servers: a TCP forwarder on the veth's host end.

The API server, S3 server and registries listen on 127.0.0.1 only. Inside the real
node's network namespace 127.0.0.1 is the namespace's own loopback, so the node (its
kubelet, containerd and pods) reaches those servers at the host end of the veth pair
instead, where this process listens on the same port numbers and copies bytes to and
from 127.0.0.1. Nothing listens on the host's other interfaces.

    python -m modelreg.devenv.gateway --listen 10.250.3.1 --port 6443 --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

_BUFFER = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _forward(
    target_host: str,
    target_port: int,
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
    except OSError:
        client_writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await client_writer.wait_closed()
        return
    try:
        await asyncio.gather(
            _pipe(client_reader, server_writer), _pipe(server_reader, client_writer)
        )
    finally:
        for w in (client_writer, server_writer):
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()


async def serve(
    listen: str, ports: list[int], target: str = "127.0.0.1", stop: asyncio.Event | None = None
) -> None:
    """Forward ``listen:port`` to ``target:port`` for each port, until SIGTERM (or
    ``stop``)."""
    servers = []
    for port in ports:

        async def handle(
            r: asyncio.StreamReader, w: asyncio.StreamWriter, port: int = port
        ) -> None:
            await _forward(target, port, r, w)

        servers.append(await asyncio.start_server(handle, listen, port, reuse_address=True))
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    print(f"forwarding {listen}:{{{','.join(map(str, ports))}}} to {target}", flush=True)
    await stop.wait()
    for s in servers:
        s.close()
    for s in servers:
        await s.wait_closed()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True, help="address to listen on")
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--target", default="127.0.0.1")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.listen, args.port, args.target))


if __name__ == "__main__":
    main()
