"""Completions while a chat answer streams, per backend of the embedded model, in one run.

A user who asked the chat panel something keeps typing: a completion every ~130 ms while a
1,000-token answer streams. For each backend: a completion alone (the same prompt five times,
its state cached after the first), the median completion during the answer, and the answer's
duration alone and with the completions beside it. CTranslate2 alone is the baseline; ``auto``
must keep both the completions and the answer at its pace; the torch backend alone shows why
``auto`` never gives it long generations (its Python decoding loop does not run well beside
another request).

    .venv/bin/python benchmarks/chat_and_completions.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import load_model  # noqa: E402
from engine.generation import GenerationConfig  # noqa: E402

MODEL = REPO / "models" / "stackcoder-mini"


def measure(backend_name: str, model_path: str, chat_tokens: int) -> dict[str, float]:
    model = load_model(model_path, backend=backend_name)
    backend = model.backend
    backend.stop_ids = ()  # both requests run their full length
    text = Path(__file__).read_text() * 20
    completion_ids = backend.encode(text)[:700]
    chat_ids = backend.encode("Explain this code:\n" + text[:200])

    def complete() -> float:
        start = time.perf_counter()
        list(backend.generate_ids(completion_ids, GenerationConfig(max_new_tokens=24)))
        return (time.perf_counter() - start) * 1000

    def chat(durations: list[float]) -> None:
        start = time.perf_counter()
        list(backend.generate_ids(chat_ids, GenerationConfig(max_new_tokens=chat_tokens)))
        durations.append((time.perf_counter() - start) * 1000)

    alone = statistics.median(complete() for _ in range(5))
    chat_alone: list[float] = []
    chat(chat_alone)
    beside: list[float] = []
    answer = threading.Thread(target=chat, args=(beside,))
    answer.start()
    during = []
    while answer.is_alive():
        during.append(complete())
        time.sleep(0.1)
    answer.join()
    model.close()
    return {
        "alone": alone,
        "during": statistics.median(during),
        "n": len(during),
        "chat_alone": chat_alone[0],
        "chat_beside": beside[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(MODEL), help="model folder (default: the embedded model)")
    parser.add_argument("--chat-tokens", type=int, default=1000, help="tokens of the chat answer")
    args = parser.parse_args()
    print(
        "| backend | completion alone ms | completion during the answer ms | answer alone ms | answer with completions ms |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in ("ct2", "auto", "torch"):
        r = measure(name, args.model, args.chat_tokens)
        print(
            f"| {name} | {r['alone']:.1f} | {r['during']:.1f} (n={r['n']}) | {r['chat_alone']:.0f} "
            f"| {r['chat_beside']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
