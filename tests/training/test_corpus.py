"""The corpus stage end to end on a few hundred real files with planted problems."""

from __future__ import annotations

import gzip
import json

import pytest

from training.corpus import CorpusConfig, OptOut, build_corpus, read_corpus
from training.errors import CorpusError


def _records(corpus):
    return [r for split in ("train", "heldout") for r in read_corpus(corpus, split)]


def test_counts_and_drops(training_corpus_dir, training_sources) -> None:
    card = json.loads((training_corpus_dir / "data_card.json").read_text())
    counts = card["counts"]
    paths = {(r["max_stars_repo_name"], r["max_stars_repo_path"]) for r in _records(training_corpus_dir)}
    assert counts["dropped"]["license"] == {"GPL-3.0": 3}
    assert not any(repo == "gamma" for repo, _ in paths)
    assert counts["dropped"]["quality"].get("max_line_length") == 1
    assert counts["dropped"]["quality"].get("alphanum_fraction") == 1
    assert counts["dropped"]["decontamination"] == {"HumanEval": 1}
    assert ("alpha", "close_elements.py") not in paths
    assert ("alpha", "long_line.py") not in paths and ("alpha", "ascii_art.py") not in paths
    # Generated and non-UTF-8 files are skipped at ingestion.
    assert ("alpha", "generated_pb2.py") not in paths and ("alpha", "latin1.py") not in paths
    assert counts["skipped_at_ingestion"].get("generated", 0) >= 1
    assert counts["skipped_at_ingestion"].get("binary", 0) >= 1
    # The planted near-duplicate and its original form one cluster: only the longer copy stays.
    planted = training_sources[1]
    assert counts["near_duplicates_removed"] >= 1
    assert ("beta", "copy_of_alpha.py") in paths
    assert ("alpha", planted["near_dup_original"].name) not in paths
    assert counts["kept"] == len(paths) == counts["after_screen"] - counts["near_duplicates_removed"]


def test_output_schema_split_and_pii(training_corpus_dir) -> None:
    held = list(read_corpus(training_corpus_dir, "heldout"))
    train = list(read_corpus(training_corpus_dir, "train"))
    assert held and train
    assert {r["max_stars_repo_name"] for r in held} == {"beta"}
    assert "beta" not in {r["max_stars_repo_name"] for r in train}
    record = train[0]
    assert set(record) >= {"content", "max_stars_repo_name", "max_stars_repo_path", "max_stars_repo_licenses"}
    assert record["max_stars_repo_licenses"] == ["MIT"]
    settings = next(r for r in train if r["max_stars_repo_path"] == "settings.py")["content"]
    assert "AKIAIOSFODNN7EXAMPLE" not in settings and "<KEY>" in settings and "<EMAIL>" in settings
    assert (training_corpus_dir / "DATA_CARD.md").read_text().startswith("# Data card")


def test_attribution_reads_the_corpus(training_corpus_dir) -> None:
    from attribution.sources import iter_source_files

    shard = sorted((training_corpus_dir / "train").glob("*.jsonl.gz"))[0]
    files = list(iter_source_files([shard]))
    with gzip.open(shard, "rt") as fh:
        assert len(files) == sum(1 for _ in fh)
    assert files[0].license == "MIT"


def test_opt_out(training_sources, tmp_path) -> None:
    opt = tmp_path / "opt-out.txt"
    opt.write_text("# opted out\nbeta\nalpha/s*.py\n")
    assert OptOut.from_file(opt).excludes("alpha", "settings.py")
    cfg = CorpusConfig(opt_out=str(opt), near_dedup=False, redact_pii=False, heldout_fraction=0.0)
    card = build_corpus([str(training_sources[0])], tmp_path / "c", cfg, progress=False)
    paths = {
        (r["max_stars_repo_name"], r["max_stars_repo_path"]) for r in read_corpus(tmp_path / "c", "train")
    }
    assert card["counts"]["splits"] == {"train": len(paths)}
    assert card["counts"]["dropped"]["opt_out"]["listed"] >= 30
    assert not any(repo == "beta" or p.startswith("s") for repo, p in paths)


def test_empty_and_missing_sources(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no usable"):
        build_corpus([str(tmp_path / "empty")], tmp_path / "out", progress=False)
    with pytest.raises(CorpusError, match="does not exist"):
        build_corpus([str(tmp_path / "missing")], tmp_path / "out2", progress=False)
    with pytest.raises(CorpusError, match="opt-out list"):
        build_corpus(
            [str(tmp_path / "empty")], tmp_path / "o3", CorpusConfig(opt_out=str(tmp_path / "none.txt"))
        )


def test_finished_output_is_kept(training_corpus_dir, training_sources) -> None:
    before = (training_corpus_dir / "data_card.json").stat().st_mtime
    build_corpus([str(training_sources[0])], training_corpus_dir, progress=False)
    assert (training_corpus_dir / "data_card.json").stat().st_mtime == before


def test_a_new_release_stays_on_its_side_of_the_split() -> None:
    from training.corpus import release_family, split_of

    assert release_family("paramiko_expect-0.3.5") == "paramiko-expect"
    assert release_family("python-dateutil-2.9.0.post0") == "python-dateutil"
    assert release_family("cpython") == "cpython"
    cfg = CorpusConfig(heldout_fraction=0.5)
    names = [f"package{i}" for i in range(40)]
    sides = {name: split_of(f"{name}-1.0.0", cfg) for name in names}
    assert set(sides.values()) == {"train", "heldout"}  # the fraction splits these names both ways
    assert all(split_of(f"{name}-2.3.1", cfg) == side for name, side in sides.items())
