"""The pretrain stage: FIM pretraining of a GPTBigCode model on the packed corpus.

AdamW with linear warm-up and cosine decay, gradient accumulation, bf16 autocast, PyTorch's
sdpa attention, held-out loss (nats/token and bits/byte), checkpoints every few minutes with
exact resume, a loss-curve PNG, and data parallelism through ``torchrun`` (gloo on CPU, NCCL on
GPUs): the same command trains on a laptop or a cluster.

Re-running the same command continues the run from ``OUT/checkpoint``; ``--resume-from`` starts
from another checkpoint or a model bundle (such as models/stackcoder-mini) when ``OUT`` has none.
A ``--seq-len`` longer than that model's context extends it: the position table is interpolated to
the new length and training continues at that length.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from training.errors import CheckpointError, ConfigError
from training.pretrain_config import PretrainConfig, lr_at, spent_schedule_warning

__all__ = ["PretrainConfig", "pretrain", "lr_at", "evaluate_loss", "load_split_texts"]

log = logging.getLogger(__name__)


def _deadline(cfg: PretrainConfig, started: float) -> float | None:
    limits = []
    if cfg.max_minutes is not None:
        limits.append(started + cfg.max_minutes * 60)
    if cfg.until:
        try:
            hh, mm = (int(x) for x in cfg.until.split(":"))
            now = dt.datetime.now(dt.timezone.utc)
            target = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        except ValueError as exc:
            raise ConfigError(
                f"--until {cfg.until!r} is not a UTC time; write it as HH:MM, e.g. 03:05."
            ) from exc
        if target <= now:
            target += dt.timedelta(days=1)
        limits.append(started + (target - now).total_seconds())
    return min(limits) if limits else None


def load_split_texts(corpus: str | Path, split: str) -> list[str]:
    """Contents of one split of a corpus folder."""
    from training.corpus import read_corpus

    return [r["content"] for r in read_corpus(corpus, split)]


@torch.no_grad()
def evaluate_loss(
    model, blocks: torch.Tensor, byte_lengths: torch.Tensor, *, micro_batch: int = 8, bf16: bool = True
) -> dict[str, float]:
    """Held-out cross-entropy in nats/token and bits/byte over fixed rows (targets = rows[:, 1:])."""
    was_training = model.training
    model.eval()
    nats = 0.0
    n_tokens = 0
    n_bytes = 0.0
    for i in range(0, len(blocks), micro_batch):
        rows = blocks[i : i + micro_batch]
        x, y = rows[:, :-1], rows[:, 1:]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and x.device.type == "cpu"):
            logits = model(input_ids=x).logits
        nats += F.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"
        ).item()
        n_tokens += y.numel()
        n_bytes += byte_lengths[y].sum().item()
    model.train(was_training)
    return {"heldout_loss": nats / n_tokens, "heldout_bpb": nats / math.log(2) / max(n_bytes, 1.0)}


class _Dist:
    """torch.distributed set-up from torchrun's environment (single process otherwise)."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled:
            import torch.distributed as dist

            # NCCL for the gradients on GPUs, gloo for the small CPU tensors (flags, means, stream states)
            backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
            self.dist = dist

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any_flag(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0])
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
        return bool(t.item())

    def mean(self, value: float) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value])
        self.dist.all_reduce(t)
        return t.item() / self.world

    def gather(self, obj) -> list:
        if not self.enabled:
            return [obj]
        out: list = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        """Leave the process group once every rank is done: a rank that tore gloo down while rank 0
        still evaluated and saved the last checkpoint was aborted ("terminate called without an
        active exception")."""
        if self.enabled:
            self.dist.barrier()
            self.dist.destroy_process_group()


def _model_config(cfg: PretrainConfig, vocab: int):
    from training.model import preset

    # Positions past the training length would stay untrained: the context window is seq_len.
    return replace(preset(cfg.size), vocab_size=vocab, n_positions=cfg.seq_len)


def _extends_context(saved: dict | None, mcfg, checkpoint: Path, out: Path) -> bool:
    """True when ``--resume-from`` names a model that differs from this run's only by a shorter
    context: the run then continues it at the longer ``--seq-len`` (a context extension)."""
    if saved is None or checkpoint.parent == out or checkpoint == out:
        return False
    return {**saved, "n_positions": mcfg.n_positions} == asdict(mcfg) and saved[
        "n_positions"
    ] < mcfg.n_positions


class StopOnSignal:
    """Turns SIGINT/SIGTERM into a request to checkpoint and stop at the end of the current step
    (Ctrl-C, a scheduler's preemption, torchrun stopping its workers) instead of losing the work
    since the last checkpoint. A second signal stops at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        log.warning("%s received: saving a checkpoint after this step", signal.Signals(signum).name)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def pretrain(cfg: PretrainConfig, *, progress: bool = True) -> dict:
    """Train (or continue training) and return the final state summary."""
    from tqdm import tqdm

    from training.checkpoint import find_checkpoint, load_state, load_weights_into, save_checkpoint
    from training.data import PackedStream, heldout_blocks, token_byte_lengths
    from training.model import build_model, check_memory, count_parameters
    from training.plots import plot_loss
    from training.tokenizer import load_tokenizer

    cfg.validate()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    ddp = _Dist()
    out = Path(cfg.out)
    tokenizer = load_tokenizer(cfg.tokenizer)
    mcfg = _model_config(cfg, len(tokenizer))
    check_memory(mcfg, cfg.micro_batch, cfg.seq_len)
    train_docs = load_split_texts(cfg.corpus, "train")
    held_docs = load_split_texts(cfg.corpus, "heldout")
    torch.manual_seed(cfg.seed)
    model = build_model(mcfg)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=1e-8,
    )
    stream = PackedStream(
        train_docs,
        tokenizer,
        seq_len=cfg.seq_len,
        micro_batch=cfg.micro_batch,
        seed=cfg.seed,
        fim_rate=cfg.fim_rate,
        spm_rate=cfg.spm_rate,
        rank=ddp.rank,
        world=ddp.world,
    )
    step, tokens_seen, history, train_seconds = 0, 0, [], 0.0
    checkpoint = find_checkpoint(out) or (find_checkpoint(cfg.resume_from) if cfg.resume_from else None)
    if cfg.resume_from and checkpoint is None and not Path(cfg.resume_from).exists():
        log.warning("--resume-from %s does not exist; starting from random weights", cfg.resume_from)
    if checkpoint is not None:
        state = load_state(checkpoint)
        if state.get("model") != asdict(mcfg) and not _extends_context(
            state.get("model"), mcfg, checkpoint, out
        ):
            raise CheckpointError(
                f"the checkpoint {checkpoint} holds a model of shape {state.get('model')}, not {asdict(mcfg)}; "
                "use the --size, --seq-len and tokenizer of the run that wrote it."
            )
        restored = load_weights_into(model, checkpoint, optimizer if checkpoint.parent == out else None)
        step, tokens_seen, history = state["step"], state["tokens"], state.get("history", [])
        if state["model"]["n_positions"] < mcfg.n_positions and ddp.main:
            log.info(
                "context extended from %d to %d positions (the position table is interpolated)",
                state["model"]["n_positions"],
                mcfg.n_positions,
            )
        train_seconds = float(state.get("train_seconds", 0.0))
        streams = state.get("data", [])
        if len(streams) == ddp.world:
            stream.load_state_dict(streams[ddp.rank])
        elif streams:
            stream.load_state_dict({"epoch": streams[0]["epoch"] + 1, "position": 0, "buffer": []})
        if ddp.main:
            log.info(
                "resumed from %s at step %d (%d tokens; optimizer state %s)",
                checkpoint,
                step,
                tokens_seen,
                "restored" if restored else "fresh",
            )
    n_params = count_parameters(model)
    train_model = model
    if ddp.enabled:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model)
    blocks = (
        heldout_blocks(held_docs, tokenizer, seq_len=cfg.seq_len, max_blocks=cfg.eval_blocks)
        if ddp.main
        else None
    )
    byte_lengths = token_byte_lengths(tokenizer, model.config.vocab_size)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    deadline = _deadline(cfg, started)
    run_info = {
        "config": asdict(cfg),
        "model": asdict(mcfg),
        "parameters": n_params,
        "world_size": ddp.world,
        "torch_threads": torch.get_num_threads(),
    }
    if ddp.main:
        log.info("pretrain: %s", json.dumps(run_info))
        (out / "run_config.json").write_text(json.dumps(run_info, indent=1), encoding="utf-8")
    log_file = (out / "log.jsonl").open("a", encoding="utf-8") if ddp.main else None

    def record(entry: dict) -> None:
        history.append(entry)
        if log_file is not None:
            log_file.write(json.dumps(entry) + "\n")
            log_file.flush()

    def save() -> None:
        streams = ddp.gather(stream.state_dict())
        if ddp.main:
            state = {
                "step": step,
                "tokens": tokens_seen,
                "train_seconds": round(train_seconds, 2),
                "data": streams,
                "history": history,
                "model": asdict(mcfg),
                "parameters": n_params,
                "config": asdict(cfg),
                "saved_at": time.time(),
            }
            save_checkpoint(out / "checkpoint", model, tokenizer, optimizer, state)
            plot_loss(history, out / "loss.png", title=f"{cfg.size} ({n_params / 1e6:.1f}M parameters)")

    spent = spent_schedule_warning(cfg, train_seconds)
    if spent and ddp.main:
        log.warning(spent)
    tokens_per_step = cfg.micro_batch * cfg.seq_len * cfg.grad_accum * ddp.world
    last_save, last_log, tokens_at_log = time.time(), time.time(), tokens_seen
    start_step = step
    bar = tqdm(
        total=cfg.max_steps, initial=step, desc="pretrain", unit="step", disable=not (progress and ddp.main)
    )
    train_model.train()
    stop_reason = "max_steps"
    loss_sum, steps_in_window = 0.0, 0
    with StopOnSignal() as stop_signal:
        while step < cfg.max_steps:
            step_started = time.time()
            lr = lr_at(step, cfg, train_seconds)
            for group in optimizer.param_groups:
                group["lr"] = lr
            for micro in range(cfg.grad_accum):
                rows = stream.next_batch()
                x, y = rows[:, :-1], rows[:, 1:]
                sync = micro == cfg.grad_accum - 1 or not ddp.enabled
                ctx = train_model.no_sync() if not sync else contextlib.nullcontext()
                with ctx:
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                        logits = train_model(input_ids=x).logits
                    loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
                    (loss / cfg.grad_accum).backward()
                loss_sum += loss.item() / cfg.grad_accum
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            steps_in_window += 1
            tokens_seen += tokens_per_step
            train_seconds += time.time() - step_started
            bar.update(1)
            if step % cfg.log_every == 0:
                now = time.time()
                # A resumed run's first window can be shorter than log_every.
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
            if ddp.main and (step % cfg.eval_every == 0 or step == cfg.max_steps):
                record(
                    {
                        "step": step,
                        "tokens": tokens_seen,
                        **evaluate_loss(model, blocks, byte_lengths, bf16=cfg.bf16),
                    }
                )
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
                if ddp.main and not (
                    history and "heldout_loss" in history[-1] and history[-1]["step"] == step
                ):
                    record(
                        {
                            "step": step,
                            "tokens": tokens_seen,
                            **evaluate_loss(model, blocks, byte_lengths, bf16=cfg.bf16),
                        }
                    )
                save()
                last_save = time.time()
            if stop:
                break
    bar.close()
    if log_file is not None:
        log_file.close()
    summary = {
        "step": step,
        "tokens": tokens_seen,
        "parameters": n_params,
        "stopped": stop_reason,
        "seconds": round(time.time() - started, 1),
        "heldout": next((h for h in reversed(history) if "heldout_loss" in h), None),
    }
    if ddp.main:
        log.info("pretrain finished: %s", json.dumps(summary))
    ddp.close()
    return summary
