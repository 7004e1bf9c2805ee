"""`stackcoder serve --tcp HOST:PORT`: the language server on a TCP socket, one client at a time.

Off loopback a token is required (the same check as ``serve-openai``): the client sends it as
``initializationOptions.token`` of ``initialize``, and a client that does not is answered with an
error and disconnected before any other message is read, and the server waits for the next
client. While one client is connected, other connections are closed at once, so nobody can take
over an authenticated session; a client that sends no ``initialize`` within
``AUTH_TIMEOUT_S`` is disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from threading import Event
from typing import Any

from pygls.io_ import run_async

__all__ = ["check_bind", "serve_tcp"]

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without a token (raises ``EngineError`` saying what to pass)."""
    from engine.openai_server import check_bind as check

    check(host, token)


def serve_tcp(server: Any, host: str, port: int, token: str | None) -> None:
    """Serve ``server`` (a pygls LanguageServer with HardenedProtocol) on HOST:PORT until its
    client disconnects; with ``token``, only a client that sends it is served."""
    check_bind(host, token)
    server.protocol.required_token = token
    stop = Event()
    server._stop_event = stop
    busy = False

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal busy
        peer = writer.get_extra_info("peername")
        if busy:
            log.warning("connection from %s refused: a client is already connected", peer)
            writer.close()
            return
        busy = True
        log.info("client %s connected", peer)
        protocol = server.protocol
        protocol.initialize_received = False
        protocol.set_writer(writer)
        timer = asyncio.get_running_loop().call_later(
            AUTH_TIMEOUT_S, lambda: None if protocol.initialize_received else writer.close()
        )
        await run_async(
            stop_event=stop,
            reader=reader,
            protocol=protocol,
            logger=log,
            error_handler=server.report_server_error,
        )
        timer.cancel()
        if not protocol.initialize_received:  # never authenticated: wait for the next client
            log.info("client %s left before initializing", peer)
            busy = False
            return
        server.shutdown()

    async def main() -> None:
        server._server = await asyncio.start_server(connection, host, port)
        log.info("serving on %s:%d (token %s)", host, port, "required" if token else "off")
        async with server._server:
            await server._server.serve_forever()

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        log.debug("server cancelled")
