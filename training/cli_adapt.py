"""`stackcoder train adapt`: LoRA adaptation of a real model (continued FIM training or SFT)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

__all__ = ["register_stages", "run_adapter_export"]


def _add_adapt(stages: argparse._SubParsersAction) -> None:
    from training.lora_config import DTYPES, LORA_TARGETS, TASKS, AdaptConfig

    d = AdaptConfig(base="", out="")
    p = stages.add_parser(
        "adapt",
        help="train a LoRA adapter on a real model: continued FIM training or SFT (resumable; torchrun)",
        description=(
            "Adapt a real checkpoint with LoRA (peft): --task fim continues FIM training (PSM/SPM with the model's own "
            "FIM tokens) on a corpus from `stackcoder train corpus`; --task sft trains on instruction/response pairs "
            "in the model's chat template. --base is a catalog name (e.g. qwen2.5-coder-0.5b-instruct), a GGUF file, "
            "a Hugging Face folder or a bundle. Checkpoints go to OUT/checkpoint (Ctrl-C or SIGTERM saves one); "
            "re-running the same command resumes. Each run ends by writing OUT/bundle, which `stackcoder complete "
            "--model OUT/bundle` and the server load (base + adapter on llama.cpp); `stackcoder train export OUT` "
            "copies it and --merge merges it. For data parallelism launch it with "
            "`torchrun --nproc-per-node N -m stackcoder_cli.main train adapt ...`."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--base", required=True, help="catalog name, GGUF file, Hugging Face folder or bundle")
    p.add_argument("--out", required=True, help="run folder (checkpoint/, bundle/, log.jsonl, loss.png)")
    p.add_argument("--task", choices=TASKS, default=d.task, help="fim (corpus) or sft (instruction pairs)")
    p.add_argument("--corpus", help="corpus folder from `stackcoder train corpus` (--task fim)")
    p.add_argument("--data", help='jsonl of {"instruction", "response"} records (--task sft)')
    p.add_argument(
        "--lora-targets",
        default=",".join(LORA_TARGETS),
        help="comma-separated names of the linear layers that get LoRA matrices",
    )
    p.add_argument(
        "--dtype", choices=DTYPES, default=d.dtype, help="autocast: auto = bfloat16 where the hardware has it"
    )
    for name, kind, text in (
        ("lora_rank", int, "LoRA rank r"),
        ("lora_alpha", float, "LoRA alpha (update scaled by alpha / r)"),
        ("lora_dropout", float, "dropout on the LoRA input"),
        ("seq_len", int, "tokens per row (fim) / longest example (sft)"),
        ("micro_batch", int, "rows per forward pass"),
        ("grad_accum", int, "micro-batches per optimizer step"),
        ("lr", float, "peak learning rate"),
        ("min_lr_ratio", float, "final learning rate / peak"),
        ("warmup_steps", int, "warm-up steps"),
        ("max_steps", int, "steps of the cosine schedule"),
        ("weight_decay", float, "AdamW weight decay"),
        ("grad_clip", float, "gradient-norm clip"),
        ("fim_rate", float, "share of documents FIM-transformed"),
        ("spm_rate", float, "share of FIM documents in SPM order"),
        ("seed", int, "seed"),
        ("eval_every", int, "steps between held-out evaluations (fim)"),
        ("eval_blocks", int, "held-out rows evaluated (fim)"),
        ("log_every", int, "steps between log lines"),
        ("checkpoint_minutes", float, "minutes between checkpoints"),
        ("threads", int, "torch threads (0 = default)"),
    ):
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(d, name), help=text)
    p.add_argument("--until", help="stop with a checkpoint at this UTC time, HH:MM (next occurrence)")
    p.add_argument("--max-minutes", type=float, help="stop with a checkpoint after this many minutes")
    p.add_argument(
        "--stop-after", type=int, help="stop with a checkpoint after this many steps of this invocation"
    )
    p.add_argument(
        "--schedule-minutes",
        type=float,
        help="decay the learning rate over this many minutes of training instead of --max-steps",
    )
    p.add_argument("--name", help="model name in the bundle (default: <base>-<task>)")
    p.add_argument(
        "--init-adapter",
        help="start a new run from the LoRA matrices of this adapter bundle or adapt run (same base, rank and "
        "targets; a fresh optimizer and schedule): continues training an adapter whose checkpoint is gone",
    )
    p.set_defaults(handler=_run_adapt)


def _run_adapt(args: argparse.Namespace) -> int:
    from training.lora import adapt
    from training.lora_config import AdaptConfig

    logging.getLogger("training").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    fields = {k: v for k, v in vars(args).items() if k in AdaptConfig.__dataclass_fields__}
    fields["lora_targets"] = tuple(t for t in args.lora_targets.split(",") if t)
    summary = adapt(AdaptConfig(**fields))
    print(json.dumps(summary))
    return 0


def run_adapter_export(args: argparse.Namespace) -> int:
    """`stackcoder train export RUN` for an adapt run: the adapter bundle, merged with --merge."""
    from training.adapter_bundle import export_adapter

    bundle = export_adapter(args.run, args.out, merge=args.merge, gguf_type=args.gguf_type, force=args.force)
    print(f"adapter bundle written to {bundle}" + (" (with the merged hf/ and GGUF)" if args.merge else ""))
    return 0


def register_stages(stages: argparse._SubParsersAction) -> None:
    """Add the adapt stage to `stackcoder train`."""
    _add_adapt(stages)
