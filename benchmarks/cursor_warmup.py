"""The first keystroke after the cursor moves: with and without the warm-up at a resting cursor.

While the user types on a line, each keystroke's prompt shares its head (everything above the
cursor's line) with the previous one, and the engine reuses that head's processed state. The
first keystroke after a jump (a click, arrow keys, go-to-definition) has a prompt new to the
engine and pays for all of it. With ``stackcoder.completion.warmOnCursorMove`` the extension tells
the server where the cursor rests, and the server computes the completions that keystroke may
ask for in the idle time (``lsp_server.completion.warm_completion``: after Enter when the cursor
is at the end of a line of code, and at the cursor).

At ``--spots`` places per scenario in files of the standard library, one of two edits is
replayed:

* ``new line``: the cursor rests at the end of a line of code, the user presses Enter (the
  editor keeps the indentation of the line that follows in the file, which the prediction may
  miss) and types the first characters of that next line (deleted from the document beforehand);
* ``continue line``: the cursor rests in the middle of a line whose rest was deleted, and the user
  types the rest.

Each spot is replayed by two models, one without and one with the warm-up (each its own engine
and caches, every keystroke through the product's request path and ``CompletionService``), one
after the other, so a change in machine load affects both alike. The warm-up runs to its end
before the first keystroke (how long that takes is reported: a user who types sooner gets part of
the benefit). Reported: latency of the first two keystrokes, and how many first keystrokes the
completion cache answered.

    .venv/bin/python benchmarks/cursor_warmup.py --spots 40
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import sysconfig
import time
from pathlib import Path

from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SCENARIOS = ("new line", "continue line")
MIN_PREFIX_CHARS = 6000  # about 1.5k tokens before the cursor, so the prompt fills its budget


def spots(count: int, seed: int) -> list[tuple[str, int]]:
    """(file text, 0-based line) pairs: a line of code with another line of code before it and
    plenty of text above, in the standard library's own files."""
    rng = random.Random(seed)
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    out: list[tuple[str, int]] = []
    while len(out) < count:
        text = rng.choice(files).read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        candidates = [
            i
            for i in range(1, len(lines) - 1)
            if len(lines[i].strip()) >= 8
            and lines[i - 1].strip()
            and not lines[i].lstrip().startswith(("#", '"', "'"))
            and len("\n".join(lines[:i])) >= MIN_PREFIX_CHARS
        ]
        if candidates:
            out.append((text, rng.choice(candidates)))
    return out


def edits(text: str, line: int) -> dict[str, tuple[str, tuple[int, int], list[str]]]:
    """Per scenario: the document, the resting cursor (line, character) and the texts typed."""
    lines = text.split("\n")
    target = lines[line]
    indent = target[: len(target) - len(target.lstrip())]
    body = target[len(indent) :]
    new_line_doc = "\n".join(lines[:line] + lines[line + 1 :])
    half = len(indent) + len(body) // 2
    cut_doc = "\n".join(lines[:line] + [target[:half]] + lines[line + 1 :])
    return {
        "new line": (new_line_doc, (line - 1, len(lines[line - 1])), ["\n" + indent, body[0], body[1]]),
        "continue line": (cut_doc, (line, half), [target[half], target[half + 1]]),
    }


class Replay:
    """One completion service replaying edits through the language server's request path."""

    def __init__(
        self, model_path: str | None, warm: bool, max_new_tokens: int, fim_order: str = "auto"
    ) -> None:
        from engine import load_model
        from engine.service import CompletionService
        from lsp_server.settings import CompletionSettings

        self.settings = CompletionSettings(max_new_tokens=max_new_tokens, cross_file_context=False)
        self.service = CompletionService(load_model(model_path, fim_order=fim_order))
        # the language server's settings (ModelHost.configure), without prefetch
        self.service.configure(
            max_prompt_tokens=self.settings.max_prompt_tokens, max_new_tokens=max_new_tokens, prefetch=False
        )
        self.warm = warm
        self.warm_ms: list[float] = []
        self.prompt_tokens: list[int] = []  # of the requests the model ran
        self.orders: list[str] = []  # the FIM prompt each of them ran (``Completion.prompt_order``)

    def _request(self, text: str, line: int, character: int):
        from lsprotocol import types

        from lsp_server.completion import InlineRequest

        return InlineRequest(
            request_id="bench",
            uri="file:///bench.py",
            text=text,
            position=types.Position(line, character),
            invoked=False,
        )

    async def _run_blocking(self, fn):
        return fn()

    def rest(self, text: str, line: int, character: int, wait: bool = True) -> None:
        """The cursor rests at (line, character): warm up (when on) and, with ``wait``, wait for
        it to finish."""
        if not self.warm:
            return
        from lsp_server.completion import warm_completion

        start = time.perf_counter()
        asyncio.run(
            warm_completion(
                self._request(text, line, character),
                self.settings,
                warm=self.service.warm,
                run_blocking=self._run_blocking,
            )
        )
        if wait:
            self.service.wait_idle(timeout=600)
            self.warm_ms.append((time.perf_counter() - start) * 1000)

    def keystroke(self, text: str, line: int, character: int) -> tuple[float, bool]:
        """A completion request after a keystroke; its latency (ms) and whether the cache answered."""
        from lsp_server.completion import prepare_request

        request = self._request(text, line, character)
        start = time.perf_counter()
        prepared = asyncio.run(prepare_request(request, self.settings, run_blocking=self._run_blocking))
        assert prepared is not None
        completion = self.service.submit(prepared.request).result(timeout=600)
        if not completion.cached:
            self.prompt_tokens.append(completion.prompt_tokens)
            self.orders.append(completion.prompt_order)
        return (time.perf_counter() - start) * 1000, completion.cached

    def close(self) -> None:
        self.service.close()


def replay(runner: Replay, doc: str, cursor: tuple[int, int], typed: list[str]) -> list[tuple[float, bool]]:
    """Rest at ``cursor`` in ``doc``, then type ``typed`` one piece at a time."""
    line, character = cursor
    runner.rest(doc, line, character)
    lines = doc.split("\n")
    offset = sum(len(x) + 1 for x in lines[:line]) + character
    out = []
    for piece in typed:
        doc = doc[:offset] + piece + doc[offset:]
        offset += len(piece)
        before = doc[:offset]
        line, character = before.count("\n"), len(before) - before.rfind("\n") - 1
        out.append(runner.keystroke(doc, line, character))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model path (default: the embedded model)")
    parser.add_argument("--spots", type=int, default=40, help="places replayed per scenario")
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    runners = {
        "off": Replay(args.model, False, args.new_tokens),
        "on": Replay(args.model, True, args.new_tokens),
    }
    results: dict[tuple[str, str], list[list[tuple[float, bool]]]] = {}
    try:
        # each spot serves one scenario: two edits at one place would share prompt heads
        places = spots(2 * args.spots, args.seed)
        for index, (text, line) in enumerate(tqdm(places, desc="spots", unit="spot")):
            scenario = SCENARIOS[index % 2]
            doc, cursor, typed = edits(text, line)[scenario]
            for name, runner in runners.items():
                results.setdefault((scenario, name), []).append(replay(runner, doc, cursor, typed))
    finally:
        for runner in runners.values():
            runner.close()

    tokens = statistics.median(runners["off"].prompt_tokens)
    print(
        f"\n{args.spots} spots per scenario, prompts of {tokens:.0f} tokens (median), "
        f"{args.new_tokens} new tokens at most, model {runners['on'].service.model_name}"
    )
    print("| scenario | warm-up | 1st keystroke p50 / p95 ms | from cache | 2nd keystroke p50 / p95 ms |")
    print("|---|---|---:|---:|---:|")
    for scenario in SCENARIOS:
        p50 = {}
        for name in ("off", "on"):
            runs = results[(scenario, name)]
            first = [r[0][0] for r in runs]
            second = [r[1][0] for r in runs]
            hits = sum(r[0][1] for r in runs)
            p50[name] = statistics.median(first)
            print(
                f"| {scenario} | {name} | {p50[name]:.1f} / {pct(first, 0.95):.1f} | {hits}/{len(runs)} "
                f"| {statistics.median(second):.1f} / {pct(second, 0.95):.1f} |"
            )
        print(f"| {scenario} | ratio off/on (p50) | {p50['off'] / max(p50['on'], 1e-3):.1f}x | | |")
    warm_ms = runners["on"].warm_ms
    print(
        f"\nwarm-up (both prompts) before the first keystroke: p50 {statistics.median(warm_ms):.0f} ms, "
        f"p95 {pct(warm_ms, 0.95):.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
