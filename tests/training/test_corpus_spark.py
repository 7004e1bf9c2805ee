"""The corpus job on PySpark in local mode gives the same corpus as the local job."""

from __future__ import annotations

import json

import pytest

from training.corpus import CARD_JSON, CorpusConfig, read_corpus


@pytest.mark.slow
def test_spark_job_matches_local_job(training_sources, training_corpus_dir, tmp_path) -> None:
    from training.corpus_spark import build_corpus_spark

    card = build_corpus_spark(
        [str(training_sources[0])], tmp_path / "spark", CorpusConfig(heldout_repos=("beta",))
    )
    for split in ("train", "heldout"):
        local = {
            (r["max_stars_repo_name"], r["max_stars_repo_path"], r["content"])
            for r in read_corpus(training_corpus_dir, split)
        }
        spark = {
            (r["max_stars_repo_name"], r["max_stars_repo_path"], r["content"])
            for r in read_corpus(tmp_path / "spark", split)
        }
        assert spark == local
    assert card["counts"]["dropped"]["decontamination"] == {"HumanEval": 1}
    assert card["counts"]["near_duplicates_removed"] >= 1
    # one data card: the same counts, licenses and repositories as the local job's
    local_card = json.loads((training_corpus_dir / CARD_JSON).read_text(encoding="utf-8"))
    for key in ("counts", "licenses", "repositories"):
        assert card[key] == local_card[key], key
    assert card["engine"].startswith("pyspark") and "engine" not in local_card
