"""The pretrain stage on a tiny model: training, exact resume, checkpoints, bad configurations."""

from __future__ import annotations

import json

import pytest
from helpers.training_corpus import tiny_pretrain_config

from training.errors import CheckpointError, ConfigError, ResourceError
from training.model import PRESETS, check_memory
from training.pretrain import pretrain
from training.pretrain_config import PretrainConfig, lr_at


def _losses(out) -> dict[int, float]:
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    return {x["step"]: x["loss"] for x in lines if "loss" in x}


def test_trains_and_resumes_exactly(training_corpus_dir, training_tokenizer_dir, tmp_path) -> None:
    straight = tmp_path / "straight"
    summary = pretrain(
        tiny_pretrain_config(training_corpus_dir, training_tokenizer_dir, straight), progress=False
    )
    assert summary["step"] == 8 and summary["tokens"] == 8 * 2 * 64
    assert summary["heldout"]["heldout_loss"] > 0 and summary["heldout"]["heldout_bpb"] > 0
    assert (straight / "loss.png").stat().st_size > 1000
    assert (straight / "checkpoint" / "hf" / "model.safetensors").is_file()

    # Stopped after 4 steps (as a kill after a checkpoint would leave it), then the same command again.
    resumed = tmp_path / "resumed"
    first = pretrain(
        tiny_pretrain_config(training_corpus_dir, training_tokenizer_dir, resumed, stop_after=4),
        progress=False,
    )
    assert first["step"] == 4 and first["stopped"] == "stop_after"
    pretrain(tiny_pretrain_config(training_corpus_dir, training_tokenizer_dir, resumed), progress=False)
    a, b = _losses(straight), _losses(resumed)
    assert a == b and len(a) == 4
    assert a[8] < a[2]


def test_resume_from_other_shape_fails(training_corpus_dir, training_tokenizer_dir, tmp_path) -> None:
    out = tmp_path / "run"
    pretrain(
        tiny_pretrain_config(training_corpus_dir, training_tokenizer_dir, out, max_steps=2, eval_every=2),
        progress=False,
    )
    with pytest.raises(CheckpointError, match="--size"):
        pretrain(
            tiny_pretrain_config(training_corpus_dir, training_tokenizer_dir, out, size="3m", max_steps=3),
            progress=False,
        )


def test_bad_configurations(training_corpus_dir, training_tokenizer_dir, tmp_path) -> None:
    with pytest.raises(ConfigError, match="--fim-rate"):
        pretrain(
            tiny_pretrain_config(training_corpus_dir, training_tokenizer_dir, tmp_path / "a", fim_rate=2.0)
        )
    with pytest.raises(ConfigError, match="--until"):
        pretrain(
            tiny_pretrain_config(training_corpus_dir, training_tokenizer_dir, tmp_path / "b", until="25h"),
            progress=False,
        )
    with pytest.raises(ResourceError, match="micro-batch"):
        pretrain(
            tiny_pretrain_config(
                training_corpus_dir, training_tokenizer_dir, tmp_path / "c", size="20m", micro_batch=100_000
            )
        )
    with pytest.raises(ResourceError):
        check_memory(PRESETS["20m"], 8, 512, available=2**28)
    with pytest.raises(ConfigError, match="known|choose"):
        pretrain(
            tiny_pretrain_config(training_corpus_dir, training_tokenizer_dir, tmp_path / "d", size="huge")
        )


def test_learning_rate_schedule() -> None:
    cfg = PretrainConfig(
        corpus="", tokenizer="", out="", lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1
    )
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(110, cfg) == pytest.approx(0.1) == lr_at(500, cfg)
    timed = PretrainConfig(corpus="", tokenizer="", out="", lr=1.0, warmup_steps=0, schedule_minutes=10)
    assert lr_at(5, timed, train_seconds=300) == pytest.approx(0.55)


def test_a_spent_time_schedule_is_reported_on_resume() -> None:
    from training.pretrain_config import spent_schedule_warning

    timed = PretrainConfig(corpus="", tokenizer="", out="", lr=1.0, schedule_minutes=60)
    assert spent_schedule_warning(timed, train_seconds=59 * 60) is None
    warning = spent_schedule_warning(timed, train_seconds=280 * 60)
    assert warning is not None and "trained 280 minutes" in warning and "280+N" in warning
    assert lr_at(5000, timed, train_seconds=280 * 60) == pytest.approx(timed.lr * timed.min_lr_ratio)
    steps = PretrainConfig(corpus="", tokenizer="", out="", lr=1.0)
    assert spent_schedule_warning(steps, train_seconds=10**6) is None


def test_sigterm_saves_a_checkpoint_and_stops(
    training_corpus_dir, training_tokenizer_dir, tmp_path, monkeypatch
) -> None:
    import os
    import signal

    from training import pretrain as module
    from training.checkpoint import find_checkpoint, load_state

    real_lr_at = module.lr_at

    def lr_and_terminate(step, cfg, seconds=0.0):  # the signal lands during step 3
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_lr_at(step, cfg, seconds)

    monkeypatch.setattr(module, "lr_at", lr_and_terminate)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "run"
    summary = pretrain(tiny_pretrain_config(training_corpus_dir, training_tokenizer_dir, out), progress=False)
    assert summary["stopped"] == "interrupted" and summary["step"] == 3
    assert load_state(find_checkpoint(out))["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_longer_seq_len_extends_the_context_of_the_model_it_resumes(
    training_corpus_dir, training_tokenizer_dir, tmp_path
) -> None:
    from safetensors.torch import load_file

    short = tmp_path / "short"
    pretrain(tiny_pretrain_config(training_corpus_dir, training_tokenizer_dir, short), progress=False)
    longer = tmp_path / "longer"
    summary = pretrain(
        tiny_pretrain_config(
            training_corpus_dir,
            training_tokenizer_dir,
            longer,
            seq_len=128,
            max_steps=12,
            resume_from=str(short),
            log_every=1,
        ),
        progress=False,
    )
    assert summary["step"] == 12 and summary["tokens"] == 8 * 2 * 64 + 4 * 2 * 128
    saved = json.loads((longer / "checkpoint" / "train_state.json").read_text())
    assert saved["model"]["n_positions"] == 128
    assert (
        load_file(str(longer / "checkpoint" / "hf" / "model.safetensors"))["transformer.wpe.weight"].shape[0]
        == 128
    )
    # it continued the trained model rather than starting over
    pretrain(
        tiny_pretrain_config(
            training_corpus_dir, training_tokenizer_dir, tmp_path / "fresh", seq_len=128, log_every=1
        ),
        progress=False,
    )
    assert _losses(longer)[9] < _losses(tmp_path / "fresh")[1]
    # a shorter --seq-len than the saved context is still a different shape
    with pytest.raises(CheckpointError, match="--seq-len"):
        pretrain(
            tiny_pretrain_config(
                training_corpus_dir,
                training_tokenizer_dir,
                tmp_path / "shorter",
                seq_len=32,
                resume_from=str(short),
            ),
            progress=False,
        )


def test_the_position_table_is_interpolated_to_the_new_length() -> None:
    import torch

    from training.checkpoint import extend_positions

    table = torch.tensor([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0]])
    longer = extend_positions(table, 5)
    assert longer.shape == (5, 2)
    expected = torch.tensor([[0.0, 10.0], [0.5, 15.0], [1.0, 20.0], [1.5, 25.0], [2.0, 30.0]])
    assert torch.allclose(longer, expected)
    assert torch.equal(extend_positions(table, 2), table[:2])
