"""`python -m lsp_server [--tcp HOST:PORT]`: the language server (same as `stackcoder serve`)."""

from __future__ import annotations

import sys

from lsp_server.cli import main

if __name__ == "__main__":
    sys.exit(main())
