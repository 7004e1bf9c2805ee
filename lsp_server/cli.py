"""Sub-commands of `stackcoder` provided by `lsp_server`: `stackcoder serve`."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["register", "serve", "main", "parse_host_port"]


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
        help="listen on a TCP socket instead of stdio (for example 127.0.0.1:2087)",
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
    """Run the server until the client disconnects or sends exit.

    Returns 0 after an orderly shutdown + exit, 1 when the client left without shutdown (as LSP
    prescribes for the exit notification).
    """
    if args.log_file:
        handler = logging.FileHandler(args.log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger("lsp_server").setLevel(logging.DEBUG)
    from lsp_server.server import server

    try:
        if args.tcp:
            server.start_tcp(*args.tcp)
        else:
            server.start_io()
    finally:
        server.close_all()
    return 0 if getattr(server.protocol, "_shutdown", False) else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m lsp_server`."""
    parser = argparse.ArgumentParser(
        prog="python -m lsp_server", description="The StackCoder language server."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return serve(args)
