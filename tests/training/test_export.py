"""Export of a pretrain run into an engine bundle that the engine loads and completes with."""

from __future__ import annotations

import json

from helpers.training_corpus import tiny_pretrain_config

from engine.model import resolve_backend
from training.evaluate import evaluate_model, heldout_fim_cases, humaneval_fim_cases
from training.export import export_bundle
from training.model_card import write_model_card
from training.pretrain import pretrain


def test_export_loads_in_the_engine(
    training_corpus_dir, training_tokenizer_dir, tmp_path, engine_cache_dir
) -> None:
    run = tmp_path / "run"
    cfg = tiny_pretrain_config(
        training_corpus_dir,
        training_tokenizer_dir,
        run,
        seq_len=128,
        max_steps=3,
        warmup_steps=1,
        log_every=1,
        eval_every=3,
    )
    pretrain(cfg, progress=False)
    bundle = export_bundle(run, tmp_path / "bundle")
    manifest = json.loads((bundle / "stackcoder.json").read_text())
    assert manifest == {"format": 1, "name": "stackcoder-mini", "hf": "hf", "ct2": {"int8": "ct2-int8"}}
    assert (bundle / "train_state.json").is_file() and (bundle / "loss.png").is_file()

    results = evaluate_model(
        bundle / "hf", training_corpus_dir, bundle, n_fim=3, eval_blocks=2, n_humaneval=3
    )
    assert (
        results["fim_exact_match_heldout"]["n"] == 3
        and 0 <= results["fim_exact_match_humaneval"]["exact_match"] <= 1
        and results["fim_backend"] == resolve_backend("auto", str(bundle / "hf"))  # as the product runs it
    )
    latency = results["completion_latency"]
    assert 0 < latency["prompt_tokens_median"] <= latency["context_window"] - latency["new_tokens_max"]
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] and latency["new_tokens_mean"] > 0
    typing = results["typing_latency"]
    assert typing["pause_ms"] == 100
    assert typing["keystrokes"] > typing["lines"] == 10 and 0 < typing["p50_ms"] <= typing["p95_ms"]
    assert typing["first_keystroke_p50_ms"] > 0 and typing["prompt_tokens_median"] > 0
    assert typing["first_keystroke_after_rest_p50_ms"] > 0
    # What is compared is one completed line, as an editor would insert it at the cursor.
    assert all("\n" not in e["completion"] for e in results["fim_exact_match_heldout"]["examples"])
    card = write_model_card(
        bundle, corpus=training_corpus_dir, tokenizer=None, commands=["stackcoder train ..."]
    )
    text = card.read_text()
    assert "## Evaluation" in text and "## Data" in text and "model.n_layer" in text
    assert "completion latency" in text and "latency while typing" in text and "cursor rested" in text

    from engine import load_model

    model = load_model(bundle, threads=1)
    try:
        completion = model.complete("def add(a, b):\n    return ", "\n", max_new_tokens=8)
        assert isinstance(completion.text, str)
        assert model.fim is not None
    finally:
        model.close()


def test_fim_cases_mask_one_code_line(training_corpus_dir) -> None:
    from training.corpus import read_corpus

    files = [(r["max_stars_repo_path"], r["content"]) for r in read_corpus(training_corpus_dir, "heldout")]
    cases = heldout_fim_cases(files, 20)
    assert len(cases) == 20
    for case in cases:
        original = dict(files)[case.source.split(":")[0]]
        assert (
            case.prefix + case.target + "\n" + case.suffix == original
            or case.prefix + case.target == original
        )
        assert case.target.strip() and not case.target.lstrip().startswith("#")
    he = humaneval_fim_cases()
    assert len(he) == 164 and all(c.target.strip() for c in he)
