"""`stackcoder index scan`: a repository checked file by file, own code left out, license fit, reports."""

from __future__ import annotations

import html
import json
import shutil
import sysconfig
from pathlib import Path

import pytest

from attribution import BuildConfig, build_index
from attribution.scan import ScanConfig, scan_repository
from attribution.scan_report import to_html, to_terminal
from stackcoder_cli.main import main

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MIT = (
    "MIT License\n\nCopyright (c) 2024 Acme\n\nPermission is hereby granted, free of charge, to any person "
    "obtaining a copy\nof this software...\n\nThe above copyright notice and this permission notice shall be "
    "included in all\ncopies or substantial portions of the Software.\n"
)


def _lines(name: str, first: int, last: int) -> str:
    return "\n".join((STDLIB / name).read_text().splitlines()[first - 1 : last]) + "\n"


@pytest.fixture(scope="module")
def scan_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of two repositories: `gplrepo` (GPL-3.0) and `widgets` (the scanned project's own)."""
    corpus = tmp_path_factory.mktemp("scan-corpus")
    gpl = corpus / "gplrepo"
    gpl.mkdir()
    (gpl / "pyproject.toml").write_text('[project]\nname = "gplrepo"\nlicense = "GPL-3.0-only"\n')
    shutil.copy(STDLIB / "textwrap.py", gpl / "textwrap.py")
    own = corpus / "widgets"
    own.mkdir()
    (own / "LICENSE").write_text(MIT)
    shutil.copy(STDLIB / "heapq.py", own / "heapq.py")
    out = tmp_path_factory.mktemp("scan-index") / "index"
    build_index([corpus], out, BuildConfig(workers=1, progress=False, extensions=[".py"]))
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An MIT project whose git remote is acme/widgets: one GPL copy, one copy of itself, one original file."""
    root = tmp_path / "widgets-app"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text('[remote "origin"]\n\turl = git@github.com:acme/widgets.git\n')
    (root / "LICENSE").write_text(MIT)
    (root / "wrap.py").write_text("# wrapping helpers\n" + _lines("textwrap.py", 202, 240))
    (root / "queue.py").write_text(_lines("heapq.py", 130, 180))
    (root / "main.py").write_text("def main():\n    print('hello from acme widgets app')\n")
    (root / "blob.bin").write_bytes(b"\x00" * 64)
    return root


@pytest.mark.parametrize("workers", [1, 2])
def test_scan_finds_the_copy_leaves_own_code_out_and_says_license_fit(
    scan_index: Path, project: Path, workers: int
) -> None:
    result = scan_repository(project, scan_index, ScanConfig(workers=workers, progress=False))
    assert result.project_license == "MIT"
    assert result.files == 4 and result.skipped.counts["binary"] == 1  # LICENSE counts as a text file
    assert result.mine >= 1  # heapq lines are the project's own (remote acme/widgets, folder widgets)
    assert {f.file for f in result.findings} == {"wrap.py"}
    groups = result.groups()
    assert [key for key, _ in groups] == [("gplrepo", "GPL-3.0-only")]
    finding = groups[0][1][0]
    assert finding.match["license_fit"]["text"] == "GPL-3.0-only source in an MIT project: incompatible"
    assert finding.match["query_start_line"] == 2 and finding.match["source_start_line"] == 202
    assert finding.source_text.splitlines()[0] == (STDLIB / "textwrap.py").read_text().splitlines()[201]
    assert finding.query_text.splitlines()[0] == finding.source_text.splitlines()[0]
    totals = result.totals()
    assert totals["findings"] == 1 and totals["by_license_fit"] == {"incompatible": 1}
    assert totals["files_per_second"] > 0


def test_reports_group_and_show_snippets_side_by_side(scan_index: Path, project: Path) -> None:
    result = scan_repository(project, scan_index, ScanConfig(progress=False))
    text = to_terminal(result)
    assert "gplrepo (GPL-3.0-only) — 1 findings — [INCOMPATIBLE]" in text
    assert "wrap.py:2-" in text and "textwrap.py:202-" in text
    page = to_html(result)
    assert page.count('<table class="pair">') == 1 and "class='fit incompatible'" in page
    first = result.findings[0].query_text.splitlines()[0]
    assert html.escape(first) in page  # the scanned lines, escaped, beside the source lines


def test_cli_writes_json_and_html(scan_index: Path, project: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report.html"
    args = ["index", "scan", str(project), "--index", str(scan_index), "--json", "--html", str(out)]
    assert main([*args, "--no-progress", "--workers", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["project_license"] == "MIT" and report["totals"]["findings"] == 1
    (group,) = report["groups"]
    assert group["repo"] == "gplrepo" and group["license_fit"]["verdict"] == "incompatible"
    assert group["findings"][0]["file"] == "wrap.py" and group["findings"][0]["source_text"]
    assert "<h1>Provenance scan of" in out.read_text()
    # marking the GPL repository as the user's own (as the quick fix would) empties the report
    assert main([*args[:-2], "--no-progress", "--workers", "1", "--mine", "gplrepo"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["findings"] == 0


def test_cli_errors_say_what_to_do(scan_index: Path, project: Path, tmp_path: Path, capsys) -> None:
    assert main(["index", "scan", str(project), "--index", str(tmp_path / "none"), "--no-progress"]) == 1
    assert "build one with `stackcoder index build" in capsys.readouterr().err
    (project / ".stackcoder").mkdir()
    (project / ".stackcoder" / "mine.json").write_text("{")
    assert main(["index", "scan", str(project), "--index", str(scan_index), "--no-progress"]) == 1
    assert "mine.json is not valid JSON" in capsys.readouterr().err
