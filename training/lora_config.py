"""Options of the adapt stage (LoRA on a real checkpoint); no torch import: used by `--help`."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.errors import ConfigError

__all__ = ["AdaptConfig", "TASKS", "DTYPES", "LORA_TARGETS"]

# --task: continued FIM training on a corpus, or supervised fine-tuning on instruction pairs
TASKS = ("fim", "sft")
# --dtype: "auto" is bfloat16 autocast on GPUs and on CPUs with bf16 matrix instructions, else float32
DTYPES = ("auto", "float32", "bfloat16")
# Every attention and MLP projection of the Llama/Qwen2/Starcoder2-style blocks.
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class AdaptConfig:
    """One LoRA adaptation run (each field maps to the flag of the same name)."""

    base: str  # catalog name, GGUF file, Hugging Face folder or bundle with hf/
    out: str  # run folder: checkpoint/, bundle/, log.jsonl, loss.png
    task: str = "fim"  # one of TASKS
    corpus: str | None = None  # corpus folder (train/ and heldout/) for --task fim
    data: str | None = None  # jsonl of {"instruction", "response"} for --task sft
    lora_rank: int = 16  # LoRA rank r
    lora_alpha: float = 32.0  # LoRA alpha (the update is scaled by alpha / r)
    lora_dropout: float = 0.05  # dropout on the LoRA input
    lora_targets: tuple[str, ...] = field(default_factory=lambda: LORA_TARGETS)  # adapted modules
    seq_len: int = 512  # tokens per training row (fim) / longest example (sft)
    micro_batch: int = 2  # rows per forward/backward
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 2e-4  # peak learning rate
    min_lr_ratio: float = 0.1  # final learning rate as a fraction of the peak
    warmup_steps: int = 20  # linear warm-up steps
    max_steps: int = 1000  # steps of the cosine schedule (training stops there)
    schedule_minutes: float | None = None  # decay over this much training time instead of max_steps
    weight_decay: float = 0.0  # AdamW weight decay on the LoRA matrices
    grad_clip: float = 1.0  # gradient-norm clipping
    fim_rate: float = 0.9  # share of documents FIM-transformed (the rest stay next-token text)
    spm_rate: float = 0.5  # share of FIM documents in SPM order
    seed: int = 0  # seed of the LoRA initialisation and data order
    eval_every: int = 100  # steps between held-out evaluations (fim)
    eval_blocks: int = 16  # held-out rows evaluated (fim)
    log_every: int = 5  # steps between log lines
    checkpoint_minutes: float = 10.0  # minutes between checkpoints
    until: str | None = None  # stop at this UTC time (HH:MM, next occurrence) with a checkpoint
    max_minutes: float | None = None  # stop after this many minutes with a checkpoint
    stop_after: int | None = None  # stop after this many steps of this invocation (schedule unchanged)
    threads: int = 0  # torch intra-op threads (0 = library default)
    dtype: str = "auto"  # one of DTYPES (autocast; the base and the LoRA weights stay float32)
    name: str | None = None  # model name in the bundle (default: <base>-<task>)
    init_adapter: str | None = None  # a new run starts from this adapter's LoRA matrices (bundle or run)

    def validate(self) -> None:
        """Raise ConfigError naming the flag to fix."""
        if self.task not in TASKS:
            raise ConfigError(f"unknown --task {self.task!r}; choose one of {', '.join(TASKS)}.")
        if self.dtype not in DTYPES:
            raise ConfigError(f"unknown --dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}.")
        if self.task == "fim" and not self.corpus:
            raise ConfigError(
                "--task fim trains on a corpus; pass --corpus DIR (from `stackcoder train corpus`)."
            )
        if self.task == "sft" and not self.data:
            raise ConfigError("--task sft trains on instruction pairs; pass --data FILE.jsonl.")
        checks = {
            "--lora-rank": self.lora_rank >= 1,
            "--lora-alpha": self.lora_alpha > 0,
            "--lora-dropout": 0 <= self.lora_dropout < 1,
            "--lora-targets": bool(self.lora_targets),
            "--seq-len": self.seq_len > 8,
            "--micro-batch": self.micro_batch > 0,
            "--grad-accum": self.grad_accum > 0,
            "--lr": self.lr > 0,
            "--max-steps": self.max_steps > 0,
            "--warmup-steps": 0 <= self.warmup_steps <= self.max_steps,
            "--fim-rate": 0 <= self.fim_rate <= 1,
            "--spm-rate": 0 <= self.spm_rate <= 1,
            "--min-lr-ratio": 0 <= self.min_lr_ratio <= 1,
            "--eval-every": self.eval_every > 0,
            "--log-every": self.log_every > 0,
        }
        for flag, ok in checks.items():
            if not ok:
                raise ConfigError(f"{flag} has an invalid value; see `stackcoder train adapt --help`.")
