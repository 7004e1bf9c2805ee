"""Fixtures shared by every test suite (append new fixtures with a targeted edit)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent

# Catalog models (the real default model, ~1 GB) are pulled once per machine by `make test` into the
# user's cache, and found there even by tests that point STACKCODER_CACHE at a fresh folder.
os.environ.setdefault("STACKCODER_MODELS", str(Path.home() / ".cache" / "stackcoder" / "models"))


@pytest.fixture(scope="session")
def tiny_gptbigcode_dir() -> Path:
    """A tiny random-weight GPTBigCode checkpoint (HF folder) with a StarCoder-style tokenizer."""
    from helpers.tiny_models import ensure_tiny_model

    return ensure_tiny_model("gpt_bigcode")


@pytest.fixture(scope="session")
def tiny_starcoder2_dir() -> Path:
    """A tiny random-weight Starcoder2 checkpoint (HF folder) with a StarCoder-style tokenizer."""
    from helpers.tiny_models import ensure_tiny_model

    return ensure_tiny_model("starcoder2")


@pytest.fixture(scope="session")
def default_model_dir(request: pytest.FixtureRequest) -> Path:
    """The embedded default model (models/stackcoder-mini) when present, else the tiny GPTBigCode."""
    bundle = REPO_ROOT / "models" / "stackcoder-mini"
    if (bundle / "stackcoder.json").exists():
        return bundle
    return request.getfixturevalue("tiny_gptbigcode_dir")


@pytest.fixture(scope="session")
def engine_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """A fresh STACKCODER_CACHE for the session, so conversions never touch ~/.cache."""
    path = tmp_path_factory.mktemp("stackcoder-cache")
    previous = os.environ.get("STACKCODER_CACHE")
    os.environ["STACKCODER_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("STACKCODER_CACHE", None)
    else:
        os.environ["STACKCODER_CACHE"] = previous


@pytest.fixture(scope="session")
def training_sources(tmp_path_factory: pytest.TempPathFactory):
    """Three small repositories of real standard-library files plus planted files (root, planted paths)."""
    from helpers.training_corpus import build_sources

    root = tmp_path_factory.mktemp("training-sources")
    return root, build_sources(root)


@pytest.fixture(scope="session")
def training_corpus_dir(training_sources, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus stage's output for `training_sources` (repository "beta" held out)."""
    from training.corpus import CorpusConfig, build_corpus

    out = tmp_path_factory.mktemp("training-corpus") / "corpus"
    build_corpus([str(training_sources[0])], out, CorpusConfig(heldout_repos=("beta",)), progress=False)
    return out


@pytest.fixture(scope="session")
def training_tokenizer_dir(training_corpus_dir, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small byte-level BPE tokenizer trained on `training_corpus_dir`."""
    from training.corpus import read_corpus
    from training.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("training-tokenizer")
    train_tokenizer((r["content"] for r in read_corpus(training_corpus_dir)), out, vocab_size=600)
    return out


@pytest.fixture(scope="session")
def real_model_name() -> str:
    """The catalog's default completion model, pulled and verified (idempotent: `make test` pulls it)."""
    from engine.catalog import load_catalog
    from engine.pull import pull

    catalog = load_catalog()
    pull(catalog.get(catalog.default_completion))
    return catalog.default_completion


@pytest.fixture(scope="session")
def real_model(real_model_name: str):
    """The real default model loaded once for the session, as the product loads it."""
    from engine import load_model

    model = load_model(real_model_name)
    yield model
    model.close()
