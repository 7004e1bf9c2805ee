"""Completion latency while a chat answer streams: one CTranslate2 worker (the baseline) vs two.

A user who asks the chat panel something keeps typing; every keystroke asks for a completion.
With one worker, CTranslate2 runs requests one after the other, so a completion waits for the
whole chat answer. With two workers sharing the weights (the engine's default,
``CT2Backend(parallel_requests=2)``), it runs beside the answer.

For each configuration, in one run: the latency of a completion alone, of the same completion
asked while a chat answer of ``--chat-tokens`` tokens streams, and that answer's own duration
(alone, and with the completions beside it), medians over ``--rounds``.

    .venv/bin/python benchmarks/concurrent_requests.py                      # tiny_starcoder_py shape
    .venv/bin/python benchmarks/concurrent_requests.py --model models/stackcoder-mini
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import textwrap as textwrap_module
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def load_backend(model_path: str | None, parallel: int, threads: int):
    """A CT2 backend of ``model_path`` (default: the random tiny_starcoder_py shape) with ``parallel`` workers."""
    from engine.backends.ct2 import CT2Backend
    from engine.convert import ct2_folder_for
    from engine.loading import inspect_model, load_tokenizer

    if model_path is None:
        from engine_bench import model_dir

        model_path = str(model_dir("tiny_starcoder_py"))
    source = inspect_model(model_path)
    folder = source.root if source.kind == "ct2" else ct2_folder_for(source, "int8")
    tokenizer = load_tokenizer(source.tokenizer_dir)
    backend = CT2Backend(
        folder, tokenizer, source.context_window, threads=threads, parallel_requests=parallel
    )
    backend.stop_ids = ()  # random weights may emit EOS early: both requests run their full length
    return backend


def measure(backend, completion_ids: list[int], chat_ids: list[int], chat_tokens: int) -> dict[str, float]:
    """Milliseconds: completion alone, completion during the chat answer, chat alone, chat with it."""
    from engine.generation import GenerationConfig

    completion_config = GenerationConfig(max_new_tokens=24)
    chat_config = GenerationConfig(max_new_tokens=chat_tokens)

    def run(ids: list[int], config: GenerationConfig) -> float:
        start = time.perf_counter()
        for _ in backend.generate_ids(ids, config):
            pass
        return (time.perf_counter() - start) * 1000

    alone = run(completion_ids, completion_config)
    chat_alone = run(chat_ids, chat_config)
    started, chat_ms = threading.Event(), []

    def chat() -> None:
        start = time.perf_counter()
        for _ in backend.generate_ids(chat_ids, chat_config):
            started.set()
        chat_ms.append((time.perf_counter() - start) * 1000)

    thread = threading.Thread(target=chat)
    thread.start()
    started.wait()
    during = run(completion_ids, completion_config)
    thread.join()
    return {"alone": alone, "during": during, "chat_alone": chat_alone, "chat_with": chat_ms[0]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="model folder or bundle (default: random tiny_starcoder_py shape)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: the engine's default)")
    parser.add_argument("--prompt-tokens", type=int, default=400)
    parser.add_argument("--chat-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    text = Path(textwrap_module.__file__).read_text() * 4
    rows = []
    for parallel in (1, 2):
        backend = load_backend(args.model, parallel, args.threads)
        ids = backend.encode(text)
        window = backend.context_window - max(args.chat_tokens, 24) - 1
        length = min(args.prompt_tokens, window)
        completion_ids, chat_ids = ids[:length], ids[length : 2 * length]
        measure(backend, completion_ids[:32], chat_ids[:32], 8)  # warm-up
        results = [measure(backend, completion_ids, chat_ids, args.chat_tokens) for _ in range(args.rounds)]
        rows.append((parallel, {k: statistics.median(r[k] for r in results) for k in results[0]}))
        backend.close()
    print(
        f"\n{args.model or 'tiny_starcoder_py (random weights)'}: {length}-token prompts, completions of 24 tokens, "
        f"a chat answer of {args.chat_tokens} tokens, median of {args.rounds}; load average {os.getloadavg()[0]:.2f}\n"
    )
    print(
        "| workers | completion alone ms | completion during the chat ms | chat alone ms | chat with the completion ms |"
    )
    print("|---:|---:|---:|---:|---:|")
    for parallel, r in rows:
        print(
            f"| {parallel} | {r['alone']:.0f} | {r['during']:.0f} | {r['chat_alone']:.0f} | {r['chat_with']:.0f} |"
        )
    base, current = rows[0][1], rows[1][1]
    print(f"\ncompletion during the chat: {base['during'] / current['during']:.1f}x faster with two workers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
