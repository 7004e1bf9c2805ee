"""Sub-commands of `stackcoder` provided by `lsp_server`: `stackcoder serve`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import BinaryIO

__all__ = ["register", "serve", "main", "parse_host_port"]

log = logging.getLogger(__name__)


def parse_host_port(value: str) -> tuple[str, int]:
    """Parse HOST:PORT for --tcp (an argparse type: bad input is a usage error)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT (for example 127.0.0.1:2087)")
    return host, int(port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `serve`."""
    parser.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        type=parse_host_port,
        default=None,
        help="listen on a TCP socket instead of stdio (for example 127.0.0.1:2087); any address but "
        "loopback needs --token",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="with --tcp: the token clients must send as initializationOptions.token "
        "(default: $STACKCODER_SERVE_TOKEN); required off loopback",
    )
    parser.add_argument(
        "--log-file",
        metavar="FILE",
        default=None,
        help="write the server's developer log (with request ids) to FILE; stdio carries the protocol",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's sub-commands to the `stackcoder` parser."""
    parser = subparsers.add_parser(
        "serve",
        help="run the language server (stdio, or --tcp HOST:PORT)",
        description=(
            "Run the StackCoder language server: inline FIM completion, infill, explain, chat and "
            "provenance diagnostics over the Language Server Protocol. Editors start it on stdio; "
            "settings (model path, backend, attribution index, ...) come from the client's "
            "initializationOptions and workspace configuration under the 'stackcoder' section."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    """Run the server until the client disconnects or sends exit, then end the process.

    Exits 0 after an orderly shutdown + exit, 1 when the client left without shutdown (as LSP
    prescribes for the exit notification). Every generation is cancelled and its thread joined
    first; the process then ends without interpreter finalization, because native inference
    libraries (CTranslate2, torch, faiss) abort the process ("terminate called without an active
    exception") when their worker threads are torn down during finalization.
    """
    if args.log_file:
        handler = logging.FileHandler(args.log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger("lsp_server").setLevel(logging.DEBUG)
    token = None
    if args.tcp:
        from lsp_server.tcp import check_bind

        token = args.token or os.environ.get("STACKCODER_SERVE_TOKEN") or None
        try:
            check_bind(args.tcp[0], token)  # before anything loads, so a refusal is instant
        except Exception as exc:
            print(f"stackcoder serve: error: {exc}", file=sys.stderr)
            return 2
    from lsp_server.server import server

    try:
        if args.tcp:
            from lsp_server.tcp import serve_tcp

            serve_tcp(server, *args.tcp, token)
        else:
            server.start_io(*protocol_streams())
    finally:
        stopped = server.close_all()
    code = 0 if getattr(server.protocol, "_shutdown", False) else 1
    if not stopped:
        log.warning("a background thread did not stop in time; ending the process anyway")
    end_process(code)
    return code  # not reached


def protocol_streams() -> tuple[BinaryIO, BinaryIO]:
    """stdin, and a private copy of stdout for JSON-RPC; file descriptor 1 then points at stderr.

    Native libraries print to stdout or redirect it: llama-cpp-python points fd 1 at /dev/null
    while a model loads, which would swallow the responses the event loop writes meanwhile (a
    client then waits forever). On its own descriptor the protocol stream is out of their reach."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return sys.stdin.buffer, os.fdopen(protocol_fd, "wb")


def end_process(code: int) -> None:
    """Flush logs and standard streams, then end the process at once with ``code``."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m lsp_server`."""
    parser = argparse.ArgumentParser(
        prog="python -m lsp_server", description="The StackCoder language server."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return serve(args)
