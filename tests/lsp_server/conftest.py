"""Fixtures of the language-server tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsp_helpers import make_workspace


@pytest.fixture(scope="session")
def lsp_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small multi-file project with non-ASCII text (shared by the server tests; do not modify)."""
    return make_workspace(tmp_path_factory.mktemp("lsp-workspace"))
