"""The suppressIncompatible policy and the reference log, on reviewed reports (no model, no index)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from lsprotocol import types

from attribution.report import Match, Report
from attribution.review import ProjectContext, review_report
from engine.generation import CancelToken
from engine.types import Completion, CompletionRequest
from lsp_server import ownership
from lsp_server.completion import InlineRequest, run_completion
from lsp_server.settings import CompletionSettings, ProvenanceSettings, parse_settings

PREFIX = "def merge(a, b):\n    "
SUGGESTION = "out = sorted(a + b)\n    return out"


def _report(license_id: str) -> Report:
    match = Match(
        repo="someone/lib",
        path="lib/merge.py",
        license=license_id,
        url=None,
        source_start_line=3,
        source_end_line=4,
        query_start_line=2,
        query_end_line=3,
        kind="exact",
        score=0.9,
    )
    return review_report(Report("copied", [match]), ProjectContext(license="MIT"))


async def _complete(policy: str, license_id: str):
    async def generate(request: CompletionRequest, cancel: CancelToken) -> Completion:
        return Completion(text=SUGGESTION, model="scripted", latency_ms=0.0, choices=[SUGGESTION])

    async def run_blocking(fn):
        return fn()

    request = InlineRequest(
        request_id="1",
        uri="file:///ws/a.py",
        text=PREFIX,
        position=types.Position(line=1, character=4),
        invoked=False,
    )
    return await run_completion(
        request,
        CompletionSettings(),
        ProvenanceSettings(policy=policy),
        cancel=CancelToken(),
        generate=generate,
        run_blocking=run_blocking,
        attribution_query=lambda text: _report(license_id),
    )


@pytest.mark.parametrize(
    ("policy", "license_id", "shown"),
    [
        ("mark", "GPL-3.0", True),
        ("suppress", "BSD-3-Clause", False),
        ("suppressIncompatible", "GPL-3.0", False),  # GPL-3.0 in an MIT project: incompatible
        ("suppressIncompatible", "BSD-3-Clause", True),  # compatible: shown, marked
        ("suppressIncompatible", "unknown", True),  # unknown is not incompatible: shown, marked
    ],
)
async def test_policy_suppresses_only_what_it_names(policy: str, license_id: str, shown: bool) -> None:
    outcome = await _complete(policy, license_id)
    assert bool(outcome.choices) is shown and outcome.suppressed == (0 if shown else 1)
    if shown:
        fit = outcome.choices[0].report.to_dict()["matches"][0]["license_fit"]
        assert fit["source"] == license_id and fit["project"] == "MIT"


def test_settings_accept_the_new_policy_and_the_mine_list() -> None:
    settings = parse_settings(
        {"provenance": {"policy": "suppressIncompatible", "mine": ["acme/x", "acme/y:src/*"]}}
    )
    assert settings.provenance.policy == "suppressIncompatible"
    assert list(settings.provenance.mine) == ["acme/x", "acme/y:src/*"]
    from lsp_server.errors import SettingsError

    with pytest.raises(SettingsError, match="stackcoder.provenance.mine"):
        parse_settings({"provenance": {"mine": "acme/x"}})


def test_copied_code_is_logged_in_its_workspace_folder(tmp_path: Path) -> None:
    ls = SimpleNamespace(
        workspace=SimpleNamespace(folders={"w": SimpleNamespace(uri=tmp_path.as_uri())}, root_path=None)
    )
    uri = (tmp_path / "src" / "a.py").as_uri()
    path = ownership.log_references(ls, uri, "suggestion", 4, "x = 1\ny = 2", _report("GPL-3.0"))
    assert path == tmp_path / ".stackcoder" / "references.log"
    (line,) = path.read_text().splitlines()
    assert (
        " | suggestion | src/a.py:5-6 | exact 0.90 | someone/lib/lib/merge.py lines 3-4 | GPL-3.0 | " in line
    )
    assert "GPL-3.0 source in an MIT project: incompatible" in line
    similar = Report("similar", [])
    assert ownership.log_references(ls, uri, "chat", 0, "x", similar) is None
    assert ownership.log_references(ls, "file:///elsewhere/b.py", "chat", 0, "x", _report("MIT")) is None
    assert len(path.read_text().splitlines()) == 1
