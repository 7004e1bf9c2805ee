"""Queries against an index of real code: copies under each transformation, outside code, bad input."""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path

import pytest

from attribution import Index
from attribution.errors import QueryError
from attribution.evaluation import (
    functions_of,
    is_hit,
    make_samples,
    outside_samples,
    reformat,
    rename_identifiers,
)
from attribution.manifest import VERSION
from attribution.sources import SourceFile


def _file(files: list[SourceFile], path: str) -> SourceFile:
    return next(f for f in files if f.path == path)


def test_verbatim_excerpt_found_with_repo_path_license_and_lines(index: Index, corpus_files) -> None:
    source = _file(corpus_files, "Lib/difflib.py")
    lines = source.content.splitlines()
    query = "\n".join(lines[400:430]) + "\n"
    report = index.query(query)
    assert report.verdict == "copied"
    top = report.matches[0]
    assert (top.repo, top.path, top.license, top.kind) == ("cpython", "Lib/difflib.py", "PSF-2.0", "exact")
    assert (top.source_start_line, top.source_end_line) == (401, 430)
    assert (top.query_start_line, top.query_end_line) == (1, 30)
    assert index.source_text(top) == "\n".join(lines[400:430])


def test_function_of_an_installed_package_keeps_its_license(index: Index, corpus_files) -> None:
    source = _file(corpus_files, "datasketch/lsh.py")
    fn = max(functions_of(source), key=lambda f: f.end_line - f.start_line)
    report = index.query(fn.text)
    assert report.verdict == "copied"
    top = report.matches[0]
    assert (top.repo, top.path, top.license) == ("datasketch", "datasketch/lsh.py", "MIT")
    assert top.url and top.url.startswith("http")
    assert top.source_start_line <= fn.start_line + 1 and top.source_end_line >= fn.end_line - 1


def test_copy_embedded_in_new_code_reports_query_lines(index: Index, corpus_files) -> None:
    source = _file(corpus_files, "Lib/textwrap.py")
    fn = next(f for f in functions_of(source) if f.text.startswith("def dedent"))
    query = "import os\n\n\ndef helper(a):\n    return a * 2\n\n\n" + fn.text
    report = index.query(query)
    assert report.verdict == "copied"
    top = report.matches[0]
    assert top.path == "Lib/textwrap.py"
    assert top.query_start_line == 8
    assert top.query_end_line == 7 + len(fn.text.splitlines())


@pytest.mark.parametrize("transform", ["renamed", "reformatted"])
def test_transformed_function_found_by_near_duplicate_search(
    index: Index, corpus_files, transform: str
) -> None:
    source = _file(corpus_files, "Lib/statistics.py")
    fn = next(f for f in functions_of(source) if f.text.startswith("def _sum("))
    query = rename_identifiers(fn.text) if transform == "renamed" else reformat(fn.text)
    assert query != fn.text
    report = index.query(query, detectors=("near",))
    assert report.verdict == "copied"
    top = report.matches[0]
    assert (top.path, top.kind) == ("Lib/statistics.py", "near")
    assert top.score >= 0.7
    assert (top.source_start_line, top.source_end_line) == (fn.start_line, fn.end_line)


def test_labelled_copies_and_outside_code(index: Index, corpus_files, outside_files) -> None:
    samples = make_samples(corpus_files, per_transform=8, seed=5)
    negatives = outside_samples(outside_files, 20, seed=2)
    assert len(negatives) == 20
    found = {t: 0 for t in ("verbatim", "partial", "renamed", "reformatted")}
    for sample in samples:
        report = index.query(sample.text)
        found[sample.transform] += is_hit(sample, report, ("exact", "near")) and report.verdict == "copied"
    assert found["verbatim"] == 8 and found["partial"] == 8
    assert found["renamed"] >= 6 and found["reformatted"] >= 6
    flagged = [s for s in negatives if index.query(s.text).verdict == "copied"]
    assert not flagged, flagged[0].text


def test_outside_code_is_original(index: Index) -> None:
    code = textwrap.dedent(
        '''
        def schedule_backups(hosts, window_minutes=30):
            """Spread nightly backups of the given hosts over a maintenance window."""
            plan = {}
            step = max(1, window_minutes // max(1, len(hosts)))
            for position, host in enumerate(sorted(hosts)):
                plan[host] = f"02:{position * step:02d}"
            return plan
        '''
    )
    report = index.query(code)
    assert report.verdict == "original"
    assert report.to_dict() == {"verdict": "original", "matches": []}


def test_report_json_schema_and_terminal_form(index: Index, corpus_files) -> None:
    source = _file(corpus_files, "Lib/shlex.py")
    report = index.query("\n".join(source.content.splitlines()[50:80]))
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {"verdict", "matches"}
    keys = {"repo", "path", "license", "url", "source_start_line", "source_end_line",
            "query_start_line", "query_end_line", "kind", "score"}  # fmt: skip
    for match in data["matches"]:
        assert set(match) == keys
        assert match["kind"] in ("exact", "near", "bm25")
        assert 1 <= match["source_start_line"] <= match["source_end_line"]
        assert 1 <= match["query_start_line"] <= match["query_end_line"] <= 30
    text = report.to_terminal(width=120)
    assert text.startswith("verdict: copied")
    assert "cpython/Lib/shlex.py:51-80" in text and "license=PSF-2.0" in text


@pytest.mark.parametrize("query", ["", "   \n\n\t", "\n"])
def test_empty_query_is_original(index: Index, query: str) -> None:
    assert index.query(query).verdict == "original"


def test_binary_and_huge_queries_are_refused(index: Index, corpus_files) -> None:
    with pytest.raises(QueryError, match="binary"):
        index.query(b"\x7fELF\x02\x01\x00\x00" * 100)
    with pytest.raises(QueryError, match="UTF-8"):
        index.query(b"\xff\xfe\xfa" * 10)
    huge = _file(corpus_files, "Lib/difflib.py").content * 150  # ~10 MB
    assert len(huge.encode()) > 9_000_000
    with pytest.raises(QueryError, match="over the"):
        index.query(huge)


def test_concurrent_queries_agree(index: Index, corpus_files) -> None:
    texts = ["\n".join(f.content.splitlines()[10:40]) for f in corpus_files[:8]]
    expected = [index.query(t).to_dict() for t in texts]
    results: dict[int, list] = {}

    def worker(n: int) -> None:
        results[n] = [index.query(t).to_dict() for t in texts]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[n] == expected for n in range(4))


def test_unknown_detector_is_refused(index: Index) -> None:
    with pytest.raises(QueryError, match="unknown detector"):
        index.query("x = 1", detectors=("fuzzy",))


def test_manifest_states_false_positive_rate(index_dir: Path) -> None:
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["version"] == VERSION
    assert manifest["counts"]["files"] > 20
    rate = manifest["membership"]["false_positive_rate_per_window"]
    assert 0 < rate < 1e-12
