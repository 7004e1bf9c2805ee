"""Entry point of the `stackcoder` console script.

Each package contributes its sub-commands through a ``register(subparsers)`` function in its
``cli`` module; heavy libraries are imported inside the command handlers so that ``--help``
stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Packages whose ``cli.register`` adds sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES = ("lsp_server.cli", "engine.cli", "attribution.cli", "training.cli")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every package's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="stackcoder",
        description="A local, open code assistant built around StarCoder-family models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stderr.close()
        return 0
    except Exception as exc:  # one clear sentence for the user, the traceback only with -v
        from stackcoder_cli.errors import user_message

        message = user_message(exc)
        if message is None:
            raise
        if args.verbose:
            logging.exception("command failed")
        print(f"stackcoder: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
