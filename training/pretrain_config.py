"""Options of the pretrain stage and its learning-rate schedule (no torch import: used by `--help`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from training.errors import ConfigError

__all__ = ["PretrainConfig", "lr_at"]


@dataclass
class PretrainConfig:
    """Options of the pretrain stage (each maps to the flag of the same name)."""

    corpus: str  # corpus folder from `train corpus` (train/ and heldout/ shards)
    tokenizer: str  # tokenizer folder from `train tokenizer`
    out: str  # run folder: checkpoint/, log.jsonl, loss.png
    size: str = "6m"  # model preset (training.model.PRESETS)
    seq_len: int = 512  # tokens per training row
    micro_batch: int = 8  # rows per forward/backward
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 2e-3  # peak learning rate
    min_lr_ratio: float = 0.1  # final learning rate as a fraction of the peak
    warmup_steps: int = 100  # linear warm-up steps
    max_steps: int = 10_000  # steps of the cosine schedule (training stops there)
    weight_decay: float = 0.1  # AdamW weight decay on matrices
    beta1: float = 0.9  # AdamW beta1
    beta2: float = 0.95  # AdamW beta2
    grad_clip: float = 1.0  # gradient-norm clipping
    fim_rate: float = 0.5  # share of documents transformed for FIM
    spm_rate: float = 0.5  # share of FIM documents in SPM order
    seed: int = 0  # seed of initialisation and data order
    eval_every: int = 250  # steps between held-out evaluations
    eval_blocks: int = 24  # held-out rows evaluated
    log_every: int = 10  # steps between log lines
    checkpoint_minutes: float = 5.0  # minutes between checkpoints
    until: str | None = None  # stop at this UTC time (HH:MM, next occurrence) with a checkpoint
    max_minutes: float | None = None  # stop after this many minutes with a checkpoint
    stop_after: int | None = None  # stop after this many steps of this invocation (schedule unchanged)
    threads: int = 0  # torch intra-op threads (0 = library default)
    bf16: bool = True  # bf16 autocast
    resume_from: str | None = None  # checkpoint/bundle to start from when OUT has no checkpoint
    schedule_minutes: float | None = None  # decay over this much training time instead of max_steps

    def validate(self) -> None:
        """Raise ConfigError naming the flag to fix."""
        checks = {
            "--seq-len": self.seq_len > 1,
            "--micro-batch": self.micro_batch > 0,
            "--grad-accum": self.grad_accum > 0,
            "--lr": self.lr > 0,
            "--max-steps": self.max_steps > 0,
            "--warmup-steps": 0 <= self.warmup_steps <= self.max_steps,
            "--fim-rate": 0 <= self.fim_rate <= 1,
            "--spm-rate": 0 <= self.spm_rate <= 1,
            "--min-lr-ratio": 0 <= self.min_lr_ratio <= 1,
        }
        for flag, ok in checks.items():
            if not ok:
                raise ConfigError(f"{flag} has an invalid value; see `stackcoder train pretrain --help`.")


def lr_at(step: int, cfg: PretrainConfig, train_seconds: float = 0.0) -> float:
    """Learning rate of a step: linear warm-up, cosine decay to min_lr_ratio * lr, then flat.

    The decay runs over ``max_steps``, or over ``schedule_minutes`` of training time (counted
    across resumptions) when that is set, for runs with a wall-clock budget.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule_minutes:
        progress = min(1.0, train_seconds / (cfg.schedule_minutes * 60))
    else:
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


def spent_schedule_warning(cfg: PretrainConfig, train_seconds: float) -> str | None:
    """A warning when a resumed run's ``--schedule-minutes`` is already spent, else None.

    The schedule counts training time across resumptions, so resuming a checkpoint that trained
    longer than ``--schedule-minutes`` would train at the floor learning rate from its first step.
    """
    if not cfg.schedule_minutes or train_seconds < cfg.schedule_minutes * 60:
        return None
    trained = train_seconds / 60
    return (
        f"this checkpoint has trained {trained:.0f} minutes, past --schedule-minutes "
        f"{cfg.schedule_minutes:g}: the learning rate stays at its floor "
        f"({cfg.lr * cfg.min_lr_ratio:.2g}). The schedule counts training time across resumptions; "
        f"to decay over N more minutes pass --schedule-minutes {trained:.0f}+N."
    )
