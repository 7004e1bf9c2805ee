"""Training stages registered under `stackcoder train`: corpus, tokenizer, pretrain, eval, export."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

__all__ = ["register_stages"]


def _add_corpus(stages: argparse._SubParsersAction) -> None:
    p = stages.add_parser(
        "corpus",
        help="build the training corpus (licenses, filters, near-dedup, PII redaction, decontamination)",
        description=(
            "Build a permissively licensed, filtered, near-deduplicated and PII-redacted corpus from folders of "
            "source trees or The Stack's jsonl/parquet files, written as sharded jsonl.gz in The Stack's schema "
            "(train/ and heldout/, split by repository) with a data card. A finished output is kept unless --force."
        ),
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="folder (one repository, or one per sub-folder), .jsonl/.jsonl.gz or .parquet file",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--pypi",
        metavar="LIST",
        help="also fetch the packages named in LIST (one per line) from PyPI "
        "with `pip download` and add their sources (one repository per package)",
    )
    p.add_argument(
        "--pypi-dir", default="data/pypi", help="where fetched wheels and sources go (default: data/pypi)"
    )
    p.add_argument(
        "--stdlib",
        metavar="PATH",
        help="also add a copy of this standard-library folder, without its "
        "tests and site-packages (e.g. /usr/lib/python3.11)",
    )
    p.add_argument("--stdlib-dir", default="data/stdlib", help="where the standard-library copy goes")
    p.add_argument("--extensions", default=".py", help="comma-separated extensions kept (default: .py)")
    p.add_argument(
        "--all-licenses", action="store_true", help="keep files of any license (default: permissive only)"
    )
    p.add_argument(
        "--opt-out", metavar="FILE", help="opted-out repositories or repo/path globs, one per line"
    )
    p.add_argument("--no-dedup", action="store_true", help="skip MinHash near-deduplication")
    p.add_argument("--no-pii", action="store_true", help="skip PII redaction")
    p.add_argument("--no-decontam", action="store_true", help="skip HumanEval decontamination")
    p.add_argument(
        "--decontaminate-file",
        action="append",
        default=[],
        metavar="FILE",
        help="also remove the problems of this benchmark jsonl (repeatable), e.g. MBPP's mbpp.jsonl "
        "(records with `code` and `test_list`); no installed package ships MBPP",
    )
    p.add_argument(
        "--heldout-repos", default="", help="comma-separated repository names/globs held out for evaluation"
    )
    p.add_argument(
        "--heldout-fraction",
        type=float,
        default=0.03,
        help="share of repositories held out when --heldout-repos is empty (default: 0.03)",
    )
    p.add_argument("--shard-files", type=int, default=5000, help="files per output shard (default: 5000)")
    p.add_argument("--spark", action="store_true", help="run the same job on PySpark in local mode")
    p.add_argument("--force", action="store_true", help="rebuild an output that is already complete")
    p.set_defaults(handler=_run_corpus)


def _corpus_config(args: argparse.Namespace):
    from training.corpus import CorpusConfig

    return CorpusConfig(
        extensions=tuple(e if e.startswith(".") else "." + e for e in args.extensions.split(",") if e),
        permissive_only=not args.all_licenses,
        opt_out=args.opt_out,
        near_dedup=not args.no_dedup,
        redact_pii=not args.no_pii,
        decontaminate=() if args.no_decontam else ("humaneval",),
        decontaminate_files=tuple(args.decontaminate_file),
        heldout_repos=tuple(r for r in args.heldout_repos.split(",") if r),
        heldout_fraction=args.heldout_fraction,
        shard_files=args.shard_files,
    )


def _run_corpus(args: argparse.Namespace) -> int:
    from training.errors import CorpusError

    sources = list(args.sources)
    if args.pypi:
        from training.sources_fetch import fetch_pypi, read_requirements

        manifest = fetch_pypi(read_requirements(args.pypi), args.pypi_dir)
        print(
            f"PyPI: {len(manifest['packages'])} packages; failed: {', '.join(manifest['failed']) or 'none'}"
        )
        sources.append(str(Path(args.pypi_dir) / "src"))
    if args.stdlib:
        from training.sources_fetch import stage_tree

        target = Path(args.stdlib_dir) / Path(args.stdlib).resolve().name
        n = stage_tree(args.stdlib, target)
        print(f"standard library: {n} files copied to {target}")
        sources.append(str(Path(args.stdlib_dir)))
    if not sources:
        raise CorpusError("no SOURCE given; pass folders or Stack-schema files, or --pypi / --stdlib.")
    cfg = _corpus_config(args)
    if args.spark:
        from training.corpus_spark import build_corpus_spark

        card = build_corpus_spark(sources, args.out, cfg, force=args.force)
    else:
        from training.corpus import build_corpus

        card = build_corpus(sources, args.out, cfg, force=args.force)
    c = card["counts"]
    print(
        f"ingested {c['ingested']} files; kept {c['kept']} ({', '.join(f'{k} {v}' for k, v in c['splits'].items())}); "
        f"near-duplicates removed {c['near_duplicates_removed']}; data card: {Path(args.out) / 'DATA_CARD.md'}"
    )
    return 0


def _add_tokenizer(stages: argparse._SubParsersAction) -> None:
    p = stages.add_parser(
        "tokenizer",
        help="train the byte-level BPE tokenizer with StarCoder's special tokens",
        description="Train a byte-level BPE tokenizer (tokenizers) with StarCoder's FIM and repository special "
        "tokens on the corpus' train split and save it in Hugging Face format; reports bytes per token on "
        "the held-out split.",
    )
    p.add_argument("--corpus", required=True, help="corpus folder from `stackcoder train corpus`")
    p.add_argument("--out", required=True, help="output folder (tokenizer.json, tokenizer_config.json, ...)")
    p.add_argument(
        "--vocab-size",
        type=int,
        default=8192,
        help="vocabulary size including special tokens (default: 8192)",
    )
    p.add_argument("--max-mb", type=float, default=60, help="megabytes of training text used (default: 60)")
    p.add_argument(
        "--context", type=int, default=1024, help="model_max_length written to the tokenizer (default: 1024)"
    )
    p.add_argument("--force", action="store_true", help="retrain even if OUT already holds a tokenizer")
    p.set_defaults(handler=_run_tokenizer)


def _run_tokenizer(args: argparse.Namespace) -> int:
    from training.corpus import read_corpus
    from training.tokenizer import bytes_per_token, load_tokenizer, train_tokenizer, write_summary

    out = Path(args.out)
    if (out / "tokenizer.json").is_file() and not args.force:
        tok = load_tokenizer(out)
        print(f"tokenizer {out} already exists ({len(tok)} tokens); pass --force to retrain it")
        return 0
    tok = train_tokenizer(
        (r["content"] for r in read_corpus(args.corpus, "train")),
        out,
        vocab_size=args.vocab_size,
        max_bytes=int(args.max_mb * 1e6),
        model_max_length=args.context,
    )
    held = [r["content"] for _, r in zip(range(2000), read_corpus(args.corpus, "heldout"), strict=False)]
    bpt = bytes_per_token(tok, held)
    write_summary(
        out, {"vocab_size": len(tok), "heldout_bytes_per_token": round(bpt, 3), "corpus": args.corpus}
    )
    print(f"tokenizer with {len(tok)} tokens saved to {out}; {bpt:.2f} bytes/token on held-out files")
    return 0


def _add_pretrain(stages: argparse._SubParsersAction) -> None:
    from training.model import PRESETS
    from training.pretrain_config import PretrainConfig

    d = PretrainConfig(corpus="", tokenizer="", out="")
    p = stages.add_parser(
        "pretrain",
        help="FIM-pretrain a GPTBigCode model (resumable; torchrun for data parallelism)",
        description=(
            "Pretrain a GPTBigCode (multi-query) model with StarCoder's FIM transform on the packed corpus. "
            "Ctrl-C (or SIGTERM) saves a checkpoint at the end of the current step and stops; re-running the same "
            "command continues from OUT/checkpoint; --resume-from starts from another "
            "checkpoint or a model bundle (e.g. models/stackcoder-mini) when OUT has none. For data parallelism "
            "launch it with `torchrun --nproc-per-node N -m stackcoder_cli.main train pretrain ...`."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--corpus", required=True, help="corpus folder from `stackcoder train corpus`")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder from `stackcoder train tokenizer`")
    p.add_argument("--out", required=True, help="run folder (checkpoint/, log.jsonl, loss.png)")
    p.add_argument("--size", default=d.size, choices=list(PRESETS), help="model size preset")
    for name, kind, text in (
        ("seq_len", int, "tokens per row"),
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
        ("eval_every", int, "steps between held-out evaluations"),
        ("eval_blocks", int, "held-out rows evaluated"),
        ("log_every", int, "steps between log lines"),
        ("checkpoint_minutes", float, "minutes between checkpoints"),
        ("threads", int, "torch threads (0 = default)"),
    ):
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(d, name), help=text)
    p.add_argument("--until", help="stop with a checkpoint at this UTC time, HH:MM (next occurrence)")
    p.add_argument("--max-minutes", type=float, help="stop with a checkpoint after this many minutes")
    p.add_argument(
        "--schedule-minutes",
        type=float,
        help="decay the learning rate over this many minutes of training instead of --max-steps",
    )
    p.add_argument(
        "--stop-after", type=int, help="stop with a checkpoint after this many steps of this invocation"
    )
    p.add_argument("--no-bf16", action="store_true", help="train in float32 instead of bf16 autocast")
    p.add_argument(
        "--resume-from",
        help="checkpoint, run folder or model bundle to start from when OUT has no checkpoint; a --seq-len "
        "longer than its context extends the context (its position table is interpolated to the new length)",
    )
    p.set_defaults(handler=_run_pretrain)


def _run_pretrain(args: argparse.Namespace) -> int:
    from training.pretrain import pretrain
    from training.pretrain_config import PretrainConfig

    logging.getLogger("training").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    fields = {k: v for k, v in vars(args).items() if k in PretrainConfig.__dataclass_fields__}
    cfg = PretrainConfig(**fields, bf16=not args.no_bf16)
    summary = pretrain(cfg)
    print(json.dumps(summary))
    return 0


def _add_eval(stages: argparse._SubParsersAction) -> None:
    p = stages.add_parser(
        "eval",
        help="held-out perplexity and single-line FIM exact match of a checkpoint",
        description="Evaluate a Hugging Face checkpoint (or a bundle's hf/ folder): held-out loss in nats/token and "
        "bits/byte, and single-line FIM exact match on held-out functions and HumanEval canonical solutions. "
        "Prints a table; with --out writes eval.json and eval.png.",
    )
    p.add_argument("--model", required=True, help="checkpoint folder, run folder or model bundle")
    p.add_argument("--corpus", required=True, help="corpus folder whose heldout/ split is evaluated")
    p.add_argument("--out", help="folder for eval.json and eval.png")
    p.add_argument("--n-fim", type=int, default=200, help="held-out FIM cases (default: 200)")
    p.add_argument("--eval-blocks", type=int, default=64, help="held-out rows for the loss (default: 64)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument(
        "--backend",
        choices=["auto", "torch", "ct2", "transformers"],
        default="auto",
        help="engine backend that makes the FIM completions and latencies (default: auto, as the product runs it)",
    )
    p.set_defaults(handler=_run_eval)


def _hf_dir(path: str) -> Path:
    from training.checkpoint import find_checkpoint

    ckpt = find_checkpoint(path)
    return (
        ckpt / "hf"
        if ckpt is not None
        else (Path(path) / "hf" if (Path(path) / "hf").is_dir() else Path(path))
    )


def _run_eval(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate_model, results_table

    results = evaluate_model(
        _hf_dir(args.model),
        args.corpus,
        args.out,
        n_fim=args.n_fim,
        eval_blocks=args.eval_blocks,
        threads=args.threads,
        backend=args.backend,
    )
    print(results_table(results))
    return 0


def _add_export(stages: argparse._SubParsersAction) -> None:
    p = stages.add_parser(
        "export",
        help="export a checkpoint as the engine's model bundle with a model card",
        description="Copy a run's checkpoint into a model bundle (stackcoder.json, hf/, ct2-int8/ converted by the "
        "engine, train_state.json, loss.png), evaluate it (unless --no-eval) and write its README.md model card. "
        "For an `adapt` run (or adapter bundle) it writes the adapter bundle (base named by catalog name and "
        "sha256, float16 peft adapter, GGUF LoRA adapter for llama.cpp); --merge adds the base with the adapter "
        "merged in, as hf/ (transformers, CTranslate2) and a GGUF file (llama.cpp).",
    )
    p.add_argument("run", help="pretrain or adapt run folder (or checkpoint folder, or adapter bundle)")
    p.add_argument(
        "--out", default="models/stackcoder-mini", help="bundle folder (default: models/stackcoder-mini)"
    )
    p.add_argument("--name", default="stackcoder-mini", help="model name in the manifest")
    p.add_argument("--corpus", help="corpus folder (for the evaluation and the data section of the card)")
    p.add_argument("--tokenizer", help="tokenizer folder (for the tokenizer section of the card)")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation")
    p.add_argument("--n-fim", type=int, default=200, help="held-out FIM cases evaluated (default: 200)")
    p.add_argument("--threads", type=int, default=0, help="torch threads for the evaluation (0 = default)")
    p.add_argument(
        "--note", action="append", default=[], help="a paragraph added to the model card (repeatable)"
    )
    p.add_argument(
        "--samples", action="store_true", help="add completions of ordinary prompts by the engine to the card"
    )
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument(
        "--merge", action="store_true", help="adapt runs: also write the merged hf/ checkpoint and GGUF file"
    )
    p.add_argument(
        "--gguf-type",
        default="q8_0",
        choices=["q8_0", "f16", "f32"],
        help="adapt runs: type of the merged GGUF",
    )
    p.set_defaults(handler=_run_export)


def reproduce_commands(state: dict, corpus_card: dict | None) -> list[str]:
    """The commands that rebuild the corpus, tokenizer and model of a run."""
    cfg = state.get("config", {})
    defaults = _pretrain_defaults()
    flags = " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in cfg.items()
        if k not in ("corpus", "tokenizer", "out", "bf16", "resume_from")
        and v is not None
        and defaults.get(k) != v
    )
    cmds = []
    if corpus_card:
        heldout = ",".join(
            sorted(r for r, i in corpus_card["repositories"].items() if i.get("split") == "heldout")
        )
        cmds.append(
            "stackcoder train corpus --pypi training/data/pypi_packages.txt --stdlib <python>/lib/python3.11 "
            f"--heldout-repos '{heldout}' --out {cfg.get('corpus')}"
        )
    cmds.append(
        f"stackcoder train tokenizer --corpus {cfg.get('corpus')} --out {cfg.get('tokenizer')} --vocab-size "
        f"{state.get('model', {}).get('vocab_size')}"
    )
    cmds.append(
        f"stackcoder train pretrain --corpus {cfg.get('corpus')} --tokenizer {cfg.get('tokenizer')} "
        f"--out {cfg.get('out')} {flags} --resume-from models/stackcoder-mini"
    )
    cmds.append(
        f"stackcoder train export {cfg.get('out')} --out models/stackcoder-mini --corpus {cfg.get('corpus')} "
        f"--tokenizer {cfg.get('tokenizer')} --force"
    )
    return cmds


def _pretrain_defaults() -> dict:
    from dataclasses import asdict

    from training.pretrain_config import PretrainConfig

    return asdict(PretrainConfig(corpus="", tokenizer="", out=""))


def _run_export(args: argparse.Namespace) -> int:
    from training.adapter_bundle import is_adapter_run

    if is_adapter_run(args.run):
        from training.cli_adapt import run_adapter_export

        return run_adapter_export(args)
    from training.export import export_bundle
    from training.model_card import write_model_card

    bundle = export_bundle(args.run, args.out, name=args.name, force=args.force)
    if not args.no_eval:
        if not args.corpus:
            from training.errors import ExportError

            raise ExportError("the evaluation needs the corpus; pass --corpus DIR or --no-eval.")
        from training.evaluate import evaluate_model, results_table

        print(
            results_table(
                evaluate_model(bundle / "hf", args.corpus, bundle, n_fim=args.n_fim, threads=args.threads)
            )
        )
    state = json.loads((bundle / "train_state.json").read_text(encoding="utf-8"))
    samples = None
    if args.samples:
        from training.samples import engine_samples

        samples = engine_samples(bundle)
        (bundle / "samples.json").write_text(json.dumps(samples, indent=1), encoding="utf-8")
    card = None
    if args.corpus and (Path(args.corpus) / "data_card.json").is_file():
        card = json.loads((Path(args.corpus) / "data_card.json").read_text(encoding="utf-8"))
    write_model_card(
        bundle,
        corpus=args.corpus,
        tokenizer=args.tokenizer,
        commands=reproduce_commands(state, card),
        notes=args.note,
        samples=samples,
    )
    print(f"bundle written to {bundle}")
    return 0


def register_stages(stages: argparse._SubParsersAction) -> None:
    """Add the corpus, tokenizer, pretrain, eval and export stages to `stackcoder train`."""
    _add_corpus(stages)
    _add_tokenizer(stages)
    _add_pretrain(stages)
    _add_eval(stages)
    _add_export(stages)
