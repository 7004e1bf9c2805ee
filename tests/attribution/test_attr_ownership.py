"""The user's own code: git remotes, `.stackcoder/mine.json`, the setting's entries, and review()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attribution.ownership import (
    MINE_FILE,
    MineFileError,
    MineRule,
    Ownership,
    add_to_mine_file,
    git_identities,
    read_mine_file,
    rule_of_setting,
)
from attribution.review import ProjectContext, review


def _match(repo: str, path: str = "src/util.py", start: int = 10, end: int = 20, **extra) -> dict:
    return {
        "repo": repo,
        "path": path,
        "license": "GPL-3.0",
        "url": None,
        "source_start_line": start,
        "source_end_line": end,
        "query_start_line": 1,
        "query_end_line": end - start + 1,
        "kind": "exact",
        "score": 1.0,
        **extra,
    }


def _git(root: Path, *urls: str) -> None:
    (root / ".git").mkdir(parents=True)
    remotes = "".join(f'[remote "r{i}"]\n\turl = {u}\n\tfetch = +refs/heads/*\n' for i, u in enumerate(urls))
    (root / ".git" / "config").write_text("[core]\n\tbare = false\n" + remotes)


def test_git_remotes_in_every_spelling(tmp_path: Path) -> None:
    _git(
        tmp_path, "git@github.com:acme/widgets.git", "https://gitlab.com/acme/tools", "ssh://git@host/x/y.git"
    )
    assert git_identities(tmp_path) == {"acme/widgets", "acme/tools", "x/y"}
    assert git_identities(tmp_path / "nowhere") == set()


def test_own_repository_is_recognised_by_remote_or_name(tmp_path: Path) -> None:
    _git(tmp_path, "https://github.com/acme/widgets.git")
    own = Ownership.of_folder(tmp_path)
    assert own.why_mine(_match("acme/widgets")) == "own repository"
    assert own.is_mine(_match("widgets"))  # an index of folders names repositories by folder name
    assert not own.is_mine(_match("other/widgets"))  # a same-named repository of someone else
    assert not own.is_mine(_match("acme/gadgets"))
    # a folder index over the workspace itself points its file:// URLs inside it
    inside = _match("anything", url=(tmp_path / "src" / "a.py").as_uri())
    assert own.why_mine(inside) == "own repository"


def test_rules_for_repository_path_and_single_finding() -> None:
    repo, path, finding = (
        MineRule("acme/tools"),
        MineRule("acme/lib", "src/*.py"),
        MineRule("acme/app", "src/io.py", (10, 24)),
    )
    assert (repo.scope, path.scope, finding.scope) == ("repository", "path", "finding")
    assert repo.covers(_match("acme/tools", "anything.c"))
    assert path.covers(_match("acme/lib", "src/util.py")) and not path.covers(_match("acme/lib", "docs/a.py"))
    assert finding.covers(_match("acme/app", "src/io.py", 20, 30))  # overlapping lines
    assert not finding.covers(_match("acme/app", "src/io.py", 25, 30))
    assert not finding.covers(_match("acme/app", "src/other.py", 10, 24))


def test_mine_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / MINE_FILE
    assert read_mine_file(path) == []
    rule = MineRule("acme/app", "src/io.py", (10, 24))
    assert add_to_mine_file(path, rule) is True
    assert add_to_mine_file(path, rule) is False  # listed once
    assert add_to_mine_file(path, MineRule("acme/tools")) is True
    assert json.loads(path.read_text()) == {
        "mine": [{"repo": "acme/app", "path": "src/io.py", "lines": [10, 24]}, {"repo": "acme/tools"}]
    }
    assert read_mine_file(path) == [rule, MineRule("acme/tools")]
    path.write_text('{"mine": [{"path": "x"}]}')
    with pytest.raises(MineFileError, match=r"mine\[0\] needs a non-empty \"repo\""):
        read_mine_file(path)
    path.write_text('{"mine": [{"repo": "a", "lines": [3, 1], "path": "x"}]}')
    with pytest.raises(MineFileError, match="lines must be"):
        read_mine_file(path)
    path.write_text("not json")
    with pytest.raises(MineFileError, match="not valid JSON"):
        read_mine_file(path)


def test_setting_entries() -> None:
    assert rule_of_setting("acme/widgets") == MineRule("acme/widgets")
    assert rule_of_setting("acme/widgets:src/*.py") == MineRule("acme/widgets", "src/*.py")
    with pytest.raises(MineFileError):
        rule_of_setting(":src")


def test_review_drops_own_code_and_adds_license_fit(tmp_path: Path) -> None:
    (tmp_path / "LICENSE").write_text(
        "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\n"
        "...\nThe above copyright notice and this permission notice shall be included in all\n"
    )
    add_to_mine_file(tmp_path / MINE_FILE, MineRule("me/old-project"))
    context = ProjectContext.of_folder(tmp_path, ["me/snippets:lib/*"])
    assert context.license == "MIT"
    report = {
        "verdict": "copied",
        "matches": [
            _match("me/old-project"),
            _match("me/snippets", "lib/x.py"),
            {**_match("someone/bsd-lib"), "license": "BSD-3-Clause", "kind": "bm25", "score": 3.2},
        ],
    }
    out = review(report, context)
    assert out["mine"] == 2 and out["project_license"] == "MIT"
    assert out["verdict"] == "similar"  # only a BM25 hit is left
    (left,) = out["matches"]
    assert left["license_fit"]["verdict"] == "compatible"
    gpl = review({"verdict": "copied", "matches": [_match("other/gpl")]}, context)
    assert gpl["verdict"] == "copied"
    assert gpl["matches"][0]["license_fit"]["text"] == "GPL-3.0 source in an MIT project: incompatible"
