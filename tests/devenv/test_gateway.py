"""The gateway forwards the real node's connections to the servers on 127.0.0.1."""

from __future__ import annotations

import asyncio

from modelreg.devenv import gateway
from modelreg.devenv.layout import free_ports


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the gateway on 127.0.0.2, once it listens."""
    for _ in range(100):
        try:
            return await asyncio.open_connection("127.0.0.2", port)
        except OSError:
            await asyncio.sleep(0.02)
    raise TimeoutError(f"the gateway never listened on 127.0.0.2:{port}")


def test_forwards_both_ways_on_the_same_port() -> None:
    async def scenario() -> bytes:
        port = free_ports(1)[0]

        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            data = await r.read()  # until the client's EOF, which the gateway passes on
            w.write(data.upper())
            await w.drain()
            w.close()

        target = await asyncio.start_server(echo, "127.0.0.1", port)
        stop = asyncio.Event()
        serving = asyncio.create_task(gateway.serve("127.0.0.2", [port], "127.0.0.1", stop))
        r, w = await _connect(port)
        w.write(b"x" * 1_000_000)
        w.write_eof()
        answer = await r.read()
        w.close()
        await w.wait_closed()
        stop.set()
        await serving
        target.close()
        await target.wait_closed()
        return answer

    assert asyncio.run(scenario()) == b"X" * 1_000_000


def test_nothing_is_forwarded_when_the_target_is_down() -> None:
    async def scenario() -> bytes:
        port = free_ports(1)[0]
        stop = asyncio.Event()
        serving = asyncio.create_task(gateway.serve("127.0.0.2", [port], "127.0.0.1", stop))
        r, w = await _connect(port)
        answer = await r.read()
        w.close()
        await w.wait_closed()
        stop.set()
        await serving
        return answer

    assert asyncio.run(scenario()) == b""
