"""Supervised fine-tuning on instruction/response pairs (the self-instruct dataset).

The instruct template (``### Instruction`` / ``### Response``) with the loss on the response
only; a configurable optimiser, learning rate, schedule, epochs and sequence length; optional LoRA
through peft (merged into the weights at the end); data parallelism through accelerate, launched
like pretraining (``torchrun --nproc-per-node N -m stackcoder_cli.main train sft ...`` or
``accelerate launch``). The result is a Hugging Face checkpoint the engine loads directly and the
export stage bundles.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.errors import CheckpointError, ConfigError
from training.sft_data import CHAT_TEMPLATE, collate, encode_pair, load_pairs

__all__ = ["SFTConfig", "OPTIMIZERS", "SCHEDULES", "run_sft", "resolve_hf_dir"]

log = logging.getLogger(__name__)


def _adamw(params, cfg: SFTConfig):
    import torch

    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))


def _adam(params, cfg: SFTConfig):
    import torch

    return torch.optim.Adam(params, lr=cfg.lr)


def _sgd(params, cfg: SFTConfig):
    import torch

    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def _adafactor(params, cfg: SFTConfig):
    from transformers.optimization import Adafactor

    return Adafactor(
        params, lr=cfg.lr, scale_parameter=False, relative_step=False, weight_decay=cfg.weight_decay
    )


# --optimizer name -> factory(params, config)
OPTIMIZERS: dict[str, Callable[[Any, SFTConfig], Any]] = {
    "adamw": _adamw,
    "adam": _adam,
    "sgd": _sgd,
    "adafactor": _adafactor,
}
# --schedule names (transformers.get_scheduler)
SCHEDULES = ("linear", "cosine", "constant_with_warmup")


@dataclass
class SFTConfig:
    """One fine-tuning run."""

    model: str  # Hugging Face checkpoint folder, or a stackcoder bundle (its "hf" folder is used)
    data: str  # jsonl of {"instruction", "response"} (self-instruct's dataset.jsonl)
    out: str  # output folder: hf/ (the fine-tuned checkpoint), sft_log.jsonl, sft.json
    epochs: int = 3
    lr: float = 2e-5
    optimizer: str = "adamw"  # one of OPTIMIZERS
    schedule: str = "cosine"  # one of SCHEDULES
    warmup_ratio: float = 0.05  # share of the steps spent warming the learning rate up
    weight_decay: float = 0.0
    batch_size: int = 8  # examples per step and process (before gradient accumulation)
    grad_accum: int = 1
    max_seq_len: int = 1024  # tokens per example (prompt + response); longer responses are cut
    max_steps: int | None = None  # stop after this many optimiser steps (None: all epochs)
    lora: bool = False  # train LoRA adapters (peft) instead of every weight
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = field(
        default_factory=tuple
    )  # module names (empty: peft's default for the family)
    seed: int = 0
    name: str | None = None  # name of the fine-tuned model (default: <base>-sft)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"unknown --optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
            )
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown --schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        for flag, ok in (
            ("--epochs", self.epochs >= 1),
            ("--lr", self.lr > 0),
            ("--batch-size", self.batch_size >= 1),
            ("--grad-accum", self.grad_accum >= 1),
            ("--max-seq-len", self.max_seq_len >= 8),
            ("--warmup-ratio", 0 <= self.warmup_ratio < 1),
            ("--max-steps", self.max_steps is None or self.max_steps >= 1),
            ("--lora-r", self.lora_r >= 1),
        ):
            if not ok:
                raise ConfigError(f"{flag} is out of range; see `stackcoder train sft --help`")


def resolve_hf_dir(path: str | Path) -> Path:
    """The Hugging Face folder of ``path`` (itself, or the ``hf`` folder of a stackcoder bundle)."""
    folder = Path(path)
    manifest = folder / "stackcoder.json"
    if manifest.exists():
        folder = folder / json.loads(manifest.read_text()).get("hf", "hf")
    if not (folder / "config.json").exists():
        raise CheckpointError(
            f"{path} holds no Hugging Face checkpoint (config.json); pass a checkpoint folder or bundle"
        )
    return folder


def run_sft(cfg: SFTConfig, *, progress: bool = True) -> dict[str, Any]:
    """Fine-tune, save ``<out>/hf`` (LoRA merged) and return a summary (losses, steps, timing)."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler

    accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum, cpu=not torch.cuda.is_available())
    set_seed(cfg.seed)
    base = resolve_hf_dir(cfg.model)
    out = Path(cfg.out)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        log.info("sft config %s", cfg)
    tokenizer = AutoTokenizer.from_pretrained(base)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    pairs = load_pairs(cfg.data)
    examples = [
        e
        for e in (encode_pair(tokenizer, p["instruction"], p["response"], cfg.max_seq_len) for p in pairs)
        if e
    ]
    if not examples:
        raise ConfigError(f"every instruction is longer than --max-seq-len {cfg.max_seq_len}; raise it")
    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32)
    trainable = model
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.lora_targets) or None,
            task_type="CAUSAL_LM",
        )
        trainable = get_peft_model(model, lora)
    params = [p for p in trainable.parameters() if p.requires_grad]
    optimizer = OPTIMIZERS[cfg.optimizer](params, cfg)
    loader = torch.utils.data.DataLoader(
        examples,
        batch_size=cfg.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(cfg.seed),
        collate_fn=lambda batch: collate(batch, pad_id),
    )
    # Steps of each process; accelerate advances the prepared scheduler once per process and step.
    procs = accelerator.num_processes
    steps_per_epoch = math.ceil(math.ceil(len(loader) / procs) / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps is not None:
        total_steps = min(cfg.max_steps, total_steps)
    scheduler = get_scheduler(
        cfg.schedule,
        optimizer,
        num_warmup_steps=int(cfg.warmup_ratio * total_steps) * procs,
        num_training_steps=total_steps * procs,
    )
    trainable, optimizer, loader, scheduler = accelerator.prepare(trainable, optimizer, loader, scheduler)
    trainable.train()
    log_path = out / "sft_log.jsonl"
    if accelerator.is_main_process:
        log_path.unlink(missing_ok=True)
    losses: list[float] = []
    history: list[dict[str, float]] = []
    step = tokens = 0
    started = time.monotonic()
    bar = tqdm(
        total=total_steps, desc="sft", unit="step", disable=not (progress and accelerator.is_main_process)
    )
    window: list[float] = []
    done = False
    for epoch in range(cfg.epochs):
        for batch in loader:
            with accelerator.accumulate(trainable):
                loss = trainable(**batch).loss
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            window.append(accelerator.gather(loss.detach()).mean().item())
            tokens += int(accelerator.gather(batch["attention_mask"].sum().reshape(1)).sum().item())
            if accelerator.sync_gradients:
                step += 1
                mean = sum(window) / len(window)
                window.clear()
                losses.append(mean)
                bar.update(1)
                bar.set_postfix(loss=f"{mean:.3f}")
                entry = {
                    "step": step,
                    "epoch": epoch,
                    "tokens": tokens,
                    "loss": mean,
                    "lr": scheduler.get_last_lr()[0],
                }
                history.append(entry)
                if accelerator.is_main_process:
                    with open(log_path, "a", encoding="utf-8") as f:
                        f.write(json.dumps(entry) + "\n")
                if step >= total_steps:
                    done = True
                    break
        if done:
            break
    bar.close()
    accelerator.wait_for_everyone()
    summary = {
        "examples": len(examples),
        "dropped_too_long": len(pairs) - len(examples),
        "steps": step,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "seconds": round(time.monotonic() - started, 1),
        "processes": accelerator.num_processes,
        "config": asdict(cfg),
    }
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(trainable)
        if cfg.lora:
            final = final.merge_and_unload()
        hf_dir = out / "hf"
        final.save_pretrained(hf_dir, safe_serialization=True)
        tokenizer.chat_template = CHAT_TEMPLATE
        # The template inside tokenizer_config.json, so the export stage's copy keeps it.
        tokenizer.save_pretrained(hf_dir, save_jinja_files=False)
        name = cfg.name or f"{base.parent.name if base.name == 'hf' else base.name}-sft"
        (hf_dir / "stackcoder-sft.json").write_text(
            json.dumps({"name": name, "base": str(base), **summary}, indent=2)
        )
        (out / "sft.json").write_text(json.dumps(summary, indent=2))
        # The checkpoint state the export stage reads (`stackcoder train export OUT ...`).
        state = {"stage": "sft", "step": step, "tokens": tokens, "history": history, "base": str(base)}
        (out / "train_state.json").write_text(json.dumps(state))
        summary["hf_dir"] = str(hf_dir)
    return summary
