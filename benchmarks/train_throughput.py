"""Training throughput: our pretrain loop vs a plain Hugging Face Trainer, and corpus files/s.

Both trainers get the same GPTBigCode model (same preset, same initial weights), the same
packed FIM rows, batch size, bf16 autocast and thread count; tokens/s is measured over the
timed steps after a warm-up. The corpus stage is timed on the same SOURCE with and without
MinHash near-dedup. Prints a table with the load average at the start.

    .venv/bin/python benchmarks/train_throughput.py --corpus data/corpus --tokenizer data/tokenizer \\
        --source data/stdlib --size 3m --steps 20 --threads 1
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def _rows(corpus: str, tokenizer, seq_len: int, batch: int, n_batches: int):
    from training.data import PackedStream
    from training.pretrain import load_split_texts

    stream = PackedStream(
        load_split_texts(corpus, "train"), tokenizer, seq_len=seq_len, micro_batch=batch, seed=0
    )
    return [stream.next_batch() for _ in range(n_batches)]


def bench_ours(args, tmp: Path) -> float:
    """tokens/s of `stackcoder train pretrain` (timed from its own log, after warm-up)."""
    import json

    from training.pretrain import pretrain
    from training.pretrain_config import PretrainConfig

    out = tmp / "ours"
    cfg = PretrainConfig(
        corpus=args.corpus,
        tokenizer=args.tokenizer,
        out=str(out),
        size=args.size,
        seq_len=args.seq_len,
        micro_batch=args.batch,
        max_steps=args.warmup + args.steps,
        warmup_steps=2,
        log_every=1,
        eval_every=10**9,
        eval_blocks=1,
        threads=args.threads,
        checkpoint_minutes=10**6,
    )
    pretrain(cfg, progress=False)
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    timed = [x for x in log if "tokens_per_s" in x and x["step"] > args.warmup]
    seconds = sum(args.batch * args.seq_len / x["tokens_per_s"] for x in timed)
    return len(timed) * args.batch * args.seq_len / seconds


def bench_trainer(args, tmp: Path) -> float:
    """tokens/s of transformers.Trainer on the same model, rows, batch and precision."""
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from training.model import build_model, preset
    from training.tokenizer import load_tokenizer

    torch.set_num_threads(args.threads)
    tok = load_tokenizer(args.tokenizer)
    from dataclasses import replace

    torch.manual_seed(0)
    model = build_model(replace(preset(args.size), vocab_size=len(tok), n_positions=args.seq_len))
    batches = _rows(args.corpus, tok, args.seq_len, args.batch, args.warmup + args.steps)
    examples = [{"input_ids": row[:-1], "labels": row[:-1]} for b in batches for row in b]

    class Timer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_step_end(self, *a, **k):
            self.times.append(time.perf_counter())

    timer = Timer()
    targs = TrainingArguments(
        output_dir=str(tmp / "trainer"),
        per_device_train_batch_size=args.batch,
        max_steps=args.warmup + args.steps,
        learning_rate=2e-3,
        lr_scheduler_type="cosine",
        warmup_steps=2,
        weight_decay=0.1,
        adam_beta2=0.95,
        bf16=True,
        use_cpu=True,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    Trainer(
        model=model,
        args=targs,
        train_dataset=examples,
        callbacks=[timer],
        data_collator=lambda feats: {k: torch.stack([f[k] for f in feats]) for k in feats[0]},
    ).train()
    span = timer.times[-1] - timer.times[args.warmup - 1]
    return args.steps * args.batch * args.seq_len / span


def bench_corpus(args, tmp: Path) -> tuple[float, float, int]:
    """files/s of the corpus stage with and without near-dedup, and the file count."""
    from training.corpus import CorpusConfig, build_corpus

    rates = []
    n = 0
    for dedup in (True, False):
        started = time.perf_counter()
        card = build_corpus(
            [args.source], tmp / f"corpus-{dedup}", CorpusConfig(near_dedup=dedup), progress=False
        )
        n = card["counts"]["ingested"]
        rates.append(n / (time.perf_counter() - started))
    return rates[0], rates[1], n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--tokenizer", default="data/tokenizer")
    parser.add_argument("--source", default="data/stdlib", help="SOURCE for the corpus-stage timing")
    parser.add_argument("--size", default="3m")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-corpus", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ours = bench_ours(args, tmp)
        hf = bench_trainer(args, tmp)
        corpus = None if args.skip_corpus else bench_corpus(args, tmp)
    print(
        f"\nload average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores); "
        f"model {args.size}, seq {args.seq_len}, batch {args.batch}, {args.threads} thread(s), {args.steps} timed steps"
    )
    print("| measurement | value | ratio |")
    print("|---|---:|---:|")
    print(f"| pretrain loop (ours), tokens/s | {ours:,.0f} | {ours / hf:.2f}x |")
    print(f"| HF Trainer (baseline), tokens/s | {hf:,.0f} | 1.00x |")
    if corpus:
        print(
            f"| corpus stage with near-dedup, files/s ({corpus[2]} files) | {corpus[0]:,.1f} | {corpus[0] / corpus[1]:.2f}x |"
        )
        print(f"| corpus stage without near-dedup, files/s | {corpus[1]:,.1f} | 1.00x |")


if __name__ == "__main__":
    main()
