"""The adapt stage: LoRA (peft) on a real checkpoint, by continued FIM training or SFT.

The base is a catalog name (``qwen2.5-coder-0.5b-instruct``), a GGUF file, a Hugging Face folder
or a bundle with ``hf/``; a GGUF base is trained through its dequantized float32 checkpoint
(``engine.gguf_source``), so the adapter fits the very file llama.cpp serves. ``--task fim`` runs
pretrain's FIM transform with the model's own FIM tokens on a corpus from ``train corpus``;
``--task sft`` trains on instruction/response pairs in the model's chat template, the loss on the
response only. Only the LoRA matrices train; the base stays frozen in float32, with bfloat16
autocast where the hardware has it (``--dtype auto``).

Checkpoints (``OUT/checkpoint``: the adapter in float32, AdamW state, data position, loss history)
are written every few minutes and on Ctrl-C/SIGTERM; re-running the command resumes exactly. Each
invocation ends by writing ``OUT/bundle``, the engine's adapter bundle (``training.adapter_bundle``).
Under ``torchrun`` it trains data parallel (gloo on CPUs, NCCL on GPUs), as ``pretrain`` does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from training.checkpoint import replace_directory
from training.errors import CheckpointError, ConfigError
from training.lora_config import AdaptConfig

__all__ = ["AdaptConfig", "BaseModel", "InstructionStream", "adapt", "build_lora_model", "resolve_base"]

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
STATE_FILE = "train_state.json"
OPTIMIZER_FILE = "optimizer.pt"
RNG_FILE = "rng.pt"


@dataclass(frozen=True)
class BaseModel:
    """The checkpoint an adapter is trained on, and how a bundle names it."""

    name: str
    hf_dir: Path  # float32 Hugging Face checkpoint the LoRA trains on
    family: str
    reference: dict[str, str]  # {"catalog", "file", "sha256"} | {"path", "sha256"} (GGUF) | {"path"} (HF)
    gguf_file: Path | None = None  # the GGUF file llama.cpp serves, when the base is one


def resolve_base(base: str) -> BaseModel:
    """Inspect a catalog name, GGUF file, Hugging Face folder or bundle; derive a GGUF's checkpoint.

    Raises:
        EngineError: the base cannot be found, is not pulled or is not a supported model.
        ConfigError: a bundle or CTranslate2 folder without Hugging Face weights.
    """
    from engine.catalog import load_catalog
    from engine.loading import file_sha256, hf_checkpoint, inspect_model

    source = inspect_model(base)
    catalog = load_catalog()
    if source.kind == "gguf" and source.gguf_file is not None:
        hf_dir = hf_checkpoint(source)
        assert hf_dir is not None
        if not Path(base).expanduser().exists() and base in catalog.entries:
            entry = catalog.get(base)
            reference = {"catalog": base, "file": entry.file, "sha256": entry.sha256}
        else:
            reference = {"path": str(source.gguf_file.resolve()), "sha256": file_sha256(source.gguf_file)}
        return BaseModel(source.name, hf_dir, source.family, reference, source.gguf_file)
    if source.hf_dir is None:
        raise ConfigError(
            f"{base} holds no Hugging Face weights to train on; pass a catalog name, a GGUF file or a checkpoint folder."
        )
    return BaseModel(source.name, source.hf_dir, source.family, {"path": str(source.hf_dir.resolve())})


def build_lora_model(hf_dir: Path, cfg: AdaptConfig):
    """The float32 base with fresh LoRA matrices on ``cfg.lora_targets`` (a peft model)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32)
    model.config.use_cache = False
    linear = sorted(
        {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    )
    targets = [t for t in cfg.lora_targets if t in linear]
    if not targets:
        raise ConfigError(
            f"none of --lora-targets {','.join(cfg.lora_targets)} is a linear layer of this model; "
            f"choose among {', '.join(linear)}."
        )
    torch.manual_seed(cfg.seed)
    lora = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def encode_instruction(
    tokenizer, instruction: str, response: str, max_len: int
) -> dict[str, list[int]] | None:
    """Ids and labels of one SFT example in the model's chat template (its instruct template when it
    has none), after the system message the product's chat sends; the prompt's labels are
    ``IGNORE_INDEX``. None when the prompt leaves no room."""
    from engine.prompts import TEMPLATE_SYSTEM
    from training.sft_data import encode_pair

    if not getattr(tokenizer, "chat_template", None):
        return encode_pair(tokenizer, instruction, response, max_len)
    turns = [{"role": "system", "content": TEMPLATE_SYSTEM}, {"role": "user", "content": instruction}]
    prompt = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*turns, {"role": "assistant", "content": response}], tokenize=False)
    if not full.startswith(prompt):
        raise ConfigError(
            "the tokenizer's chat template does not continue the prompt with the answer; "
            "train this model with `stackcoder train sft` instead."
        )
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    room = max_len - len(prompt_ids)
    if room < 1:
        return None
    answer_ids = answer_ids[:room]
    return {"input_ids": prompt_ids + answer_ids, "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids}


class InstructionStream:
    """Batches of instruction examples in a seeded order per epoch, resumable (JSON state)."""

    def __init__(
        self,
        examples: Sequence[dict[str, list[int]]],
        *,
        micro_batch: int,
        pad_id: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.examples, self.micro_batch, self.pad_id = examples, micro_batch, pad_id
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch, self.position = 0, 0
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        order = list(range(len(self.examples)))
        random.Random(f"{self.seed}:{self.epoch}").shuffle(order)
        return order[self.rank :: self.world] if len(order) >= self.world else order

    def next_batch(self) -> dict[str, torch.Tensor]:
        """``input_ids``, ``attention_mask`` and ``labels`` (already shifted: label i is token i+1)."""
        from training.sft_data import collate

        batch = []
        while len(batch) < self.micro_batch:
            if self.position >= len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._permutation()
            batch.append(self.examples[self._order[self.position]])
            self.position += 1
        t = collate(batch, self.pad_id)
        return {
            "input_ids": t["input_ids"][:, :-1],
            "attention_mask": t["attention_mask"][:, :-1],
            "labels": t["labels"][:, 1:],
        }

    def state_dict(self) -> dict:
        """Position of the stream."""
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved position."""
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._permutation()


class _FimBatches:
    """pretrain's packed FIM rows as ``input_ids``/``labels`` batches."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def next_batch(self) -> dict[str, torch.Tensor]:
        rows = self.stream.next_batch()
        return {"input_ids": rows[:, :-1], "labels": rows[:, 1:]}

    def state_dict(self) -> dict:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.stream.load_state_dict(state)


def _batches(cfg: AdaptConfig, tokenizer, rank: int, world: int):
    if cfg.task == "fim":
        from training.data import PackedStream
        from training.pretrain import load_split_texts

        docs = load_split_texts(cfg.corpus, "train")
        return _FimBatches(
            PackedStream(
                docs,
                tokenizer,
                seq_len=cfg.seq_len,
                micro_batch=cfg.micro_batch,
                seed=cfg.seed,
                fim_rate=cfg.fim_rate,
                spm_rate=cfg.spm_rate,
                rank=rank,
                world=world,
            )
        )
    from training.sft_data import load_pairs

    pairs = load_pairs(cfg.data)
    examples = [
        e
        for p in pairs
        if (e := encode_instruction(tokenizer, p["instruction"], p["response"], cfg.seq_len + 1))
    ]
    if not examples:
        raise ConfigError(f"every instruction is longer than --seq-len {cfg.seq_len}; raise it.")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    return InstructionStream(
        examples, micro_batch=cfg.micro_batch, pad_id=pad, seed=cfg.seed, rank=rank, world=world
    )


def _autocast_dtype(cfg: AdaptConfig, device: torch.device) -> torch.dtype | None:
    """bfloat16 autocast, or None for plain float32 (``--dtype auto``: bf16 on GPUs and bf16 CPUs)."""
    from engine.cpu import has_bf16

    if cfg.dtype == "float32":
        return None
    if cfg.dtype == "bfloat16" or device.type == "cuda" or has_bf16():
        return torch.bfloat16
    return None


def _save(directory: Path, model, optimizer, state: dict) -> None:
    """Write the adapter (float32), optimizer and state atomically (temporary folder, rename)."""
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp / "adapter"))
    torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
    torch.save(torch.get_rng_state(), tmp / RNG_FILE)  # LoRA dropout continues its sequence on resume
    (tmp / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    replace_directory(tmp, directory)


def _read_state(checkpoint: Path) -> dict:
    try:
        return json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"the checkpoint {checkpoint} cannot be read ({exc}); delete it to start over or restore it."
        ) from None


def _load_lora_matrices(weights_file: Path, model, *, what: str, if_unreadable: str, if_other: str) -> None:
    """Load LoRA matrices (safetensors) into ``model``; a CheckpointError naming ``what`` and what to
    do when they cannot be read or are not this model's."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    try:
        weights = load_file(str(weights_file))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{what} cannot be read ({exc}){if_unreadable}") from None
    result = set_peft_model_state_dict(model, weights)
    if getattr(result, "unexpected_keys", None):
        raise CheckpointError(f"{what} holds other LoRA matrices than this run's; {if_other}")


def _restore(checkpoint: Path, model, optimizer) -> dict:
    state = _read_state(checkpoint)
    _load_lora_matrices(
        checkpoint / "adapter" / "adapter_model.safetensors",
        model,
        what=f"the checkpoint {checkpoint}",
        if_unreadable="; delete it to start over or restore it.",
        if_other="use the --lora-rank and --lora-targets of the run that wrote it, or another --out.",
    )
    optimizer.load_state_dict(torch.load(checkpoint / OPTIMIZER_FILE, weights_only=True))
    if (checkpoint / RNG_FILE).is_file():
        torch.set_rng_state(torch.load(checkpoint / RNG_FILE, weights_only=True))
    return state


def _init_from_adapter(source: Path, model, base: BaseModel) -> None:
    """Load the LoRA matrices of an adapter bundle, adapt run or checkpoint into ``model``."""
    from training.adapter_bundle import ADAPTER_DIR, MANIFEST

    candidates = [source / ADAPTER_DIR, source / "checkpoint" / ADAPTER_DIR, source / "bundle" / ADAPTER_DIR]
    found = next(
        (c / "adapter_model.safetensors" for c in candidates if (c / "adapter_model.safetensors").is_file()),
        None,
    )
    if found is None:
        raise CheckpointError(
            f"--init-adapter {source} holds no adapter (adapter/adapter_model.safetensors); pass an adapter bundle "
            "or the folder of an adapt run."
        )
    manifest = source / MANIFEST
    if manifest.is_file():
        named = json.loads(manifest.read_text(encoding="utf-8")).get("base", {})
        if named.get("sha256") and named.get("sha256") != base.reference.get("sha256"):
            raise CheckpointError(
                f"--init-adapter {source} adapts another base (sha256 {named.get('sha256')}); pass the adapter of "
                f"{base.name}."
            )
    _load_lora_matrices(
        found,
        model,
        what=f"--init-adapter {source}",
        if_unreadable=".",
        if_other="use its --lora-rank and --lora-targets.",
    )


def _check_same_run(state: dict, cfg: AdaptConfig, base: BaseModel, checkpoint: Path) -> None:
    saved = state.get("config", {})
    for key in ("task", "lora_rank", "lora_alpha", "seq_len", "seed", "init_adapter"):
        if saved.get(key) != getattr(cfg, key):
            raise CheckpointError(
                f"the checkpoint {checkpoint} was written with --{key.replace('_', '-')} {saved.get(key)}, not "
                f"{getattr(cfg, key)}; pass the same value or another --out."
            )
    if state.get("base") != base.reference:
        raise CheckpointError(
            f"the checkpoint {checkpoint} adapts {state.get('base')}, not {base.reference}; pass that --base "
            "or another --out."
        )


def adapt(cfg: AdaptConfig, *, progress: bool = True) -> dict[str, Any]:
    """Train (or continue training) a LoRA adapter; write ``OUT/bundle`` and return a summary."""
    from tqdm import tqdm

    from engine.loading import load_tokenizer
    from training.adapter_bundle import write_adapter_bundle
    from training.data import heldout_blocks
    from training.plots import plot_loss
    from training.pretrain import StopOnSignal, _deadline, _Dist, load_split_texts
    from training.pretrain_config import lr_at, spent_schedule_warning

    cfg.validate()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    ddp = _Dist()
    device = torch.device(
        f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    out = Path(cfg.out)
    base = resolve_base(cfg.base)
    tokenizer = load_tokenizer(base.hf_dir)
    batches = _batches(cfg, tokenizer, ddp.rank, ddp.world)
    model = build_lora_model(base.hf_dir, cfg).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.999))
    step, tokens_seen, history, train_seconds = 0, 0, [], 0.0
    checkpoint = out / "checkpoint"
    if (checkpoint / STATE_FILE).is_file():
        _check_same_run(_read_state(checkpoint), cfg, base, checkpoint)
        state = _restore(checkpoint, model, optimizer)
        step, tokens_seen, history = state["step"], state["tokens"], state.get("history", [])
        train_seconds = float(state.get("train_seconds", 0.0))
        streams = state.get("data", [])
        if len(streams) == ddp.world:
            batches.load_state_dict(streams[ddp.rank])
        if ddp.main:
            log.info("resumed from %s at step %d (%d tokens)", checkpoint, step, tokens_seen)
    elif cfg.init_adapter:
        _init_from_adapter(Path(cfg.init_adapter), model, base)
        if ddp.main:
            log.info("LoRA matrices initialised from %s", cfg.init_adapter)
    trainable = sum(p.numel() for p in params)
    train_model = model
    if ddp.enabled:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    blocks = None
    if cfg.task == "fim" and ddp.main:
        held = load_split_texts(cfg.corpus, "heldout")
        blocks = (
            heldout_blocks(held, tokenizer, seq_len=cfg.seq_len, max_blocks=cfg.eval_blocks) if held else None
        )
    amp = _autocast_dtype(cfg, device)
    out.mkdir(parents=True, exist_ok=True)
    run_info = {
        "config": asdict(cfg),
        "base": base.reference,
        "trainable_parameters": trainable,
        "world_size": ddp.world,
        "device": str(device),
        "autocast": str(amp).replace("torch.", "") if amp else "float32",
        "torch_threads": torch.get_num_threads(),
    }
    if ddp.main:
        log.info("adapt: %s", json.dumps(run_info))
        (out / "run_config.json").write_text(json.dumps(run_info, indent=1), encoding="utf-8")
    log_file = (out / "log.jsonl").open("a", encoding="utf-8") if ddp.main else None

    def record(entry: dict) -> None:
        history.append(entry)
        if log_file is not None:
            log_file.write(json.dumps(entry) + "\n")
            log_file.flush()

    def forward_loss(batch: dict[str, torch.Tensor], net) -> torch.Tensor:
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logits = net(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits
        labels = batch["labels"]
        return F.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE_INDEX
        )

    @torch.no_grad()
    def heldout() -> dict[str, float]:
        model.eval()
        losses = [
            forward_loss({"input_ids": b[None, :-1], "labels": b[None, 1:]}, model).item() for b in blocks
        ]
        model.train()
        return {"heldout_loss": round(sum(losses) / len(losses), 5)}

    def save() -> None:
        streams = ddp.gather(batches.state_dict())
        if ddp.main:
            state = {
                "stage": f"adapt-{cfg.task}",
                "step": step,
                "tokens": tokens_seen,
                "train_seconds": round(train_seconds, 2),
                "data": streams,
                "history": history,
                "base": base.reference,
                "trainable_parameters": trainable,
                "config": asdict(cfg),
                "saved_at": time.time(),
            }
            _save(checkpoint, model, optimizer, state)
            plot_loss(history, out / "loss.png", title=f"LoRA r={cfg.lora_rank} {cfg.task} on {base.name}")

    spent = spent_schedule_warning(cfg, train_seconds)  # type: ignore[arg-type]
    if spent and ddp.main:
        log.warning(spent)
    started = time.time()
    deadline = _deadline(cfg, started)  # type: ignore[arg-type]
    last_save, last_log, tokens_at_log, start_step = time.time(), time.time(), tokens_seen, step
    bar = tqdm(
        total=cfg.max_steps,
        initial=step,
        desc=f"adapt {cfg.task}",
        unit="step",
        disable=not (progress and ddp.main),
    )
    train_model.train()
    stop_reason, loss_sum, steps_in_window = "max_steps", 0.0, 0
    with StopOnSignal() as stop_signal:
        while step < cfg.max_steps:
            step_started = time.time()
            lr = lr_at(step, cfg, train_seconds)  # type: ignore[arg-type]
            for group in optimizer.param_groups:
                group["lr"] = lr
            step_tokens = 0
            for micro in range(cfg.grad_accum):
                batch = batches.next_batch()
                step_tokens += int(batch["input_ids"].numel())
                sync = micro == cfg.grad_accum - 1 or not ddp.enabled
                with train_model.no_sync() if not sync else contextlib.nullcontext():
                    loss = forward_loss(batch, train_model)
                    (loss / cfg.grad_accum).backward()
                loss_sum += loss.item() / cfg.grad_accum
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            steps_in_window += 1
            tokens_seen += step_tokens * ddp.world
            train_seconds += time.time() - step_started
            bar.update(1)
            if step % cfg.log_every == 0:
                now = time.time()
                mean_loss = ddp.mean(loss_sum / steps_in_window)
                loss_sum, steps_in_window = 0.0, 0
                rate = (tokens_seen - tokens_at_log) / max(now - last_log, 1e-9)
                last_log, tokens_at_log = now, tokens_seen
                record(
                    {
                        "step": step,
                        "tokens": tokens_seen,
                        "loss": round(mean_loss, 5),
                        "lr": lr,
                        "tokens_per_s": round(rate, 1),
                        "time": round(now, 1),
                    }
                )
                bar.set_postfix(loss=f"{mean_loss:.3f}", tok_s=f"{rate:.0f}")
            if blocks is not None and (step % cfg.eval_every == 0 or step == cfg.max_steps):
                record({"step": step, "tokens": tokens_seen, **heldout()})
            now = time.time()
            stop = False
            if deadline is not None and now >= deadline:
                stop, stop_reason = True, "time limit"
            if cfg.stop_after is not None and step - start_step >= cfg.stop_after:
                stop, stop_reason = True, "stop_after"
            if stop_signal.received is not None:
                stop, stop_reason = True, "interrupted"
            stop = ddp.any_flag(stop)
            due = ddp.any_flag(now - last_save >= cfg.checkpoint_minutes * 60)
            if stop or due or step == cfg.max_steps:
                save()
                last_save = time.time()
            if stop:
                break
    bar.close()
    if log_file is not None:
        log_file.close()
    summary: dict[str, Any] = {
        "step": step,
        "tokens": tokens_seen,
        "trainable_parameters": trainable,
        "stopped": stop_reason,
        "seconds": round(time.time() - started, 1),
        "first_loss": next((h["loss"] for h in history if "loss" in h), None),
        "last_loss": next((h["loss"] for h in reversed(history) if "loss" in h), None),
        "heldout": next((h for h in reversed(history) if "heldout_loss" in h), None),
    }
    if ddp.main:
        if step > start_step or not (out / "bundle").exists():
            bundle = write_adapter_bundle(
                checkpoint,
                out / "bundle",
                base=base,
                tokenizer=tokenizer,
                name=cfg.name or f"{base.name}-{cfg.task}",
            )
            summary["bundle"] = str(bundle)
        log.info("adapt finished: %s", json.dumps(summary))
    ddp.close()
    return summary
