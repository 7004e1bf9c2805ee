"""Ghost text while a chat answer streams, through the product's ``CompletionService``, in one run.

A user asks the chat panel about a selection (a ~300-token question) and goes on typing while the
answer streams: a keystroke every ``--interval`` seconds, each asking for a completion (the cache
off, so every keystroke runs the model, as typing new code does). Configurations:

  alone               completions with no chat, and the chat answer with no typing
  one runtime         chat on the completion model's runtime (the two take turns: a completion
                      waits for the answer, and each evicts the other's prompt state)
  two runtimes        chat on a runtime of its own, both computing at once on the same cores
  two runtimes + gate the product: chat on its own runtime, pausing between tokens and prompt
                      chunks while a completion runs (``engine.priority``)

Reported: completion latency (median, p95) per keystroke, and the answer's first-token time and
streaming rate.

    .venv/bin/python benchmarks/chat_and_completions.py            # the default model
    .venv/bin/python benchmarks/chat_and_completions.py --model models/stackcoder-mini
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine import default_model, load_model  # noqa: E402
from engine.cpu import instruction_sets  # noqa: E402
from engine.generation import CancelToken  # noqa: E402
from engine.model import CodeModel  # noqa: E402
from engine.service import CompletionService  # noqa: E402
from engine.types import ChatRequest, CompletionRequest  # noqa: E402

SOURCE = REPO / "benchmarks" / "data" / "ledger.py"
QUESTION = "What does this function do, and is there a bug in it? Answer briefly."
TYPED = "        total = sum(entry.amount for entry in entries if entry.account == account)\n"


@dataclass
class Run:
    completion_ms: list[float] = field(default_factory=list)
    first_token_s: float = 0.0
    answer_tokens: int = 0
    answer_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.answer_tokens / self.answer_s if self.answer_s else 0.0


def chat_request(source: str, variant: int) -> ChatRequest:
    """The question about the file's head; each ``variant`` starts differently, so that no
    configuration finds its prompt cached by an earlier one."""
    selection = f"# ledger.py, revision {variant}\n" + source[:1100]
    return ChatRequest(
        messages=({"role": "user", "content": QUESTION},),
        context=selection,
        max_new_tokens=160,
        temperature=0.0,
    )


def keystroke(source: str, typed: int) -> CompletionRequest:
    """The request after ``typed`` characters of ``TYPED`` in the middle of ``source``."""
    cut = source.index("\n", len(source) // 2) + 1
    return CompletionRequest(
        "file:///ledger.py", source[:cut] + TYPED[:typed], source[cut:], max_new_tokens=16, use_cache=False
    )


def type_keystrokes(service: CompletionService, source: str, n: int, interval: float, run: Run) -> None:
    """Type ``TYPED`` into the middle of ``source``, a character every ``interval`` seconds (or
    as soon as the previous suggestion came, when it took longer)."""
    for i in range(n):
        started = time.perf_counter()
        service.submit(keystroke(source, i + 1)).result(timeout=120)
        run.completion_ms.append((time.perf_counter() - started) * 1000)
        time.sleep(max(0.0, interval - (time.perf_counter() - started)))


def answer(pieces: Iterator[str], model: CodeModel, run: Run) -> None:
    started = time.perf_counter()
    text = ""
    for piece in pieces:
        if not text:
            run.first_token_s = time.perf_counter() - started
        text += piece
    run.answer_s = time.perf_counter() - started - run.first_token_s
    run.answer_tokens = model.count_tokens(text)


def measure(
    service: CompletionService,
    chat: Callable[[ChatRequest], Iterator[str]] | None,
    chat_model: CodeModel,
    source: str,
    keystrokes: int,
    interval: float,
    variant: int,
) -> Run:
    """One configuration: the completion runtime's state is warm at the cursor (the user was
    typing there), the question is new to the chat runtime."""
    service.submit(keystroke(source, 0)).result(timeout=300)
    run = Run()
    reader = None
    if chat is not None:
        reader = threading.Thread(target=answer, args=(chat(chat_request(source, variant)), chat_model, run))
        reader.start()
        time.sleep(0.5)  # the question's prompt is being evaluated when typing starts
    type_keystrokes(service, source, keystrokes, interval, run)
    if reader is not None:
        reader.join()
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="catalog name or path (default: the default model)")
    parser.add_argument("--keystrokes", type=int, default=16)
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between keystrokes")
    args = parser.parse_args()
    reference = args.model or default_model().reference
    source = SOURCE.read_text()

    completion_model = load_model(reference)
    chat_model = load_model(reference)
    rows: list[tuple[str, Run]] = []

    def ungated(request: ChatRequest) -> Iterator[str]:
        return chat_model.chat(
            request.messages,
            context=request.context,
            max_new_tokens=request.max_new_tokens,
            temperature=request.temperature,
        )

    shared = CompletionService(completion_model)
    alone = measure(shared, None, chat_model, source, args.keystrokes, args.interval, 0)
    answer(ungated(chat_request(source, 0)), chat_model, alone)  # the chat runtime, nothing beside it
    rows.append(("alone (each on its own)", alone))
    rows.append(
        (
            "one runtime",
            measure(
                shared,
                lambda r: shared.chat(r, CancelToken()),
                completion_model,
                source,
                args.keystrokes,
                args.interval,
                1,
            ),
        )
    )
    shared.stop_completions()

    two = CompletionService(completion_model, chat_loader=lambda: chat_model)
    rows.append(
        ("two runtimes", measure(two, ungated, chat_model, source, args.keystrokes, args.interval, 2))
    )
    two.prepare_chat()  # the chat runtime now pauses at the gate's pause points
    rows.append(
        (
            "two runtimes + gate (product)",
            measure(
                two,
                lambda r: two.chat(r, CancelToken()),
                chat_model,
                source,
                args.keystrokes,
                args.interval,
                3,
            ),
        )
    )
    print(
        f"\nmodel {completion_model.name} ({completion_model.backend_name}); CPU: {instruction_sets()}; "
        f"{args.keystrokes} keystrokes every {args.interval:.2f} s, 16 new tokens each; "
        f"chat question {completion_model.count_tokens(QUESTION + chat_request(source, 0).context)} tokens"
    )
    print(
        "| configuration | completion median ms | completion p95 ms | answer first token s | answer tok/s |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, run in rows:
        ms = sorted(run.completion_ms)
        p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
        print(
            f"| {label} | {statistics.median(ms):,.0f} | {p95:,.0f} | {run.first_token_s:.2f} | {run.rate:.1f} |"
        )
    two.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
