"""The HumanEval harness passes the canonical solutions and fails broken ones, in the sandbox."""

from __future__ import annotations

import pytest

from training.errors import ConfigError
from training.humaneval import (
    STOP_SEQUENCES,
    HumanEvalConfig,
    build_program,
    chat_answer_code,
    evaluate_completions,
    format_table,
    load_problems,
    pass_at_k,
    run_humaneval,
    truncate_completion,
)
from training.sandbox import Limits, Sandbox

SUBSET = [f"HumanEval/{i}" for i in (0, 2, 10, 32, 53, 101, 129, 162, 163)]


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(Limits(cpu_seconds=10, wall_seconds=30), workers=2)


def _canonical(problems):
    return {t: [p["canonical_solution"]] for t, p in problems.items()}


def test_canonical_solutions_of_a_subset_pass(sandbox: Sandbox) -> None:
    problems = load_problems(task_ids=SUBSET)
    report = evaluate_completions(problems, _canonical(problems), sandbox, k=(1,), progress=False)
    failing = {t: v["samples"][0]["reason"] for t, v in report["per_problem"].items() if v["correct"] == 0}
    assert failing == {}
    assert report["scores"]["pass@1"] == 1.0
    assert report["isolation"] == sandbox.isolation


# One bound or result of each canonical solution (SUBSET[:4]) moved by one: (old, new).
OFF_BY_ONE = {
    "HumanEval/0": ("enumerate(numbers)", "enumerate(numbers[:-1])"),  # both loops miss the last number
    "HumanEval/2": ("number % 1.0", "number % 2.0"),
    "HumanEval/10": ("beginning_of_suffix = 0", "beginning_of_suffix = 1"),
    "HumanEval/32": ("return begin", "return begin + 1"),
}


def _off_by_one(task_id: str, solution: str) -> str:
    old, new = OFF_BY_ONE[task_id]
    assert old in solution, (task_id, old)
    return solution.replace(old, new)


# How each kind of broken solution is made, and the errors its checks end with.
BROKEN = {
    "returns None": (lambda task_id, solution: "    return None\n", ("AssertionError", "TypeError")),
    "raises": (lambda task_id, solution: "    raise NotImplementedError\n", ("NotImplementedError",)),
    "syntax error": (lambda task_id, solution: solution + "\n    )(\n", ("SyntaxError",)),
    "off by one": (_off_by_one, ("AssertionError",)),
}


@pytest.mark.parametrize("how", list(BROKEN))
def test_broken_solutions_fail(sandbox: Sandbox, how: str) -> None:
    problems = load_problems(task_ids=SUBSET[:4])
    make, errors = BROKEN[how]
    completions = {t: [make(t, p["canonical_solution"])] for t, p in problems.items()}
    report = evaluate_completions(problems, completions, sandbox, k=(1,), progress=False)
    assert report["passed_samples"] == 0
    assert report["scores"]["pass@1"] == 0.0
    assert report["statuses"] == {"failed": len(problems)}
    reasons = {t: v["samples"][0]["reason"] for t, v in report["per_problem"].items()}
    assert all(reason.startswith(errors) for reason in reasons.values()), reasons


@pytest.mark.slow
def test_all_164_canonical_solutions_pass_and_broken_ones_fail() -> None:
    sandbox = Sandbox(Limits(cpu_seconds=10, wall_seconds=60))
    problems = load_problems()
    assert len(problems) == 164
    report = evaluate_completions(problems, _canonical(problems), sandbox, k=(1,), progress=False)
    assert report["passed_samples"] == 164, {
        t: v["samples"][0]["reason"] for t, v in report["per_problem"].items() if not v["correct"]
    }
    broken = {t: ["    return None\n"] for t in problems}
    assert evaluate_completions(problems, broken, sandbox, k=(1,), progress=False)["passed_samples"] == 0


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    assert pass_at_k([10], [0], 1) == 0.0
    assert pass_at_k([10], [10], 10) == 1.0
    assert pass_at_k([10], [3], 1) == pytest.approx(0.3)
    # 1 - C(7, 5) / C(10, 5) = 1 - 21 / 252
    assert pass_at_k([10], [3], 5) == pytest.approx(1 - 21 / 252)
    assert pass_at_k([10, 10], [10, 0], 1) == pytest.approx(0.5)


def test_mixed_samples_give_fractional_pass_at_k(sandbox: Sandbox) -> None:
    problems = load_problems(task_ids=["HumanEval/0", "HumanEval/2"])
    completions = {t: [p["canonical_solution"], "    return None\n"] for t, p in problems.items()}
    report = evaluate_completions(problems, completions, sandbox, k=(1, 2), progress=False)
    assert report["scores"] == {"pass@1": pytest.approx(0.5), "pass@2": pytest.approx(1.0)}
    assert "pass@1" in format_table(report)


def test_programs_and_truncation() -> None:
    problem = load_problems(task_ids=["HumanEval/0"])["HumanEval/0"]
    program = build_program(problem, "    return True\n", "starcoder")
    assert program.startswith(problem["prompt"].strip())
    assert program.rstrip().endswith("check(has_close_elements)")
    assert truncate_completion("    return x\n\ndef other():\n    pass") == "    return x\n"
    assert truncate_completion("    return x\nprint(1)") == "    return x"


def _chat_answer(problem: dict, body: str) -> str:
    """A chat answer as Qwen writes one: a sentence, the whole function (without the prompt's
    helpers and imports) in a code block, a remark."""
    signature = next(
        ln for ln in problem["prompt"].splitlines() if ln.startswith(f"def {problem['entry_point']}")
    )
    return f"Here is the function:\n\n```python\n{signature}\n{body}```\n\nIt runs in linear time."


def test_chat_answers_run_after_the_prompts_module(sandbox: Sandbox) -> None:
    # HumanEval/38's prompt defines the helper its solution calls, /0 imports List: a chat answer
    # repeating neither must still run; a wrong body must still fail.
    problems = load_problems(task_ids=["HumanEval/0", "HumanEval/38"])
    right = {
        t: [chat_answer_code(_chat_answer(p, p["canonical_solution"]), p["entry_point"])]
        for t, p in problems.items()
    }
    report = evaluate_completions(problems, right, sandbox, k=(1,), variant="chat", progress=False)
    assert report["scores"]["pass@1"] == 1.0, report["per_problem"]
    wrong = {
        t: [chat_answer_code(_chat_answer(p, "    return None\n"), p["entry_point"])]
        for t, p in problems.items()
    }
    report = evaluate_completions(problems, wrong, sandbox, k=(1,), variant="chat", progress=False)
    assert report["scores"]["pass@1"] == 0.0


def test_chat_answer_code_takes_the_block_defining_the_function() -> None:
    answer = "```python\nimport math\n```\nThen:\n```py\ndef area(r):\n    return math.pi * r * r\n```\n"
    assert chat_answer_code(answer, "area") == "def area(r):\n    return math.pi * r * r\n"
    assert (
        chat_answer_code("```python\ndef f():\n    return 1\n", "f") == "def f():\n    return 1\n"
    )  # unclosed
    assert chat_answer_code("```python\nx = 1\n```", "f") == "x = 1\n"
    assert chat_answer_code("def f(): return 1", "f") == "def f(): return 1"


def test_config_validation_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--prompt-variant"):
        HumanEvalConfig(prompt_variant="chatml")
    with pytest.raises(ConfigError, match="--n"):
        HumanEvalConfig(n=0)
    assert HumanEvalConfig(greedy=True, k=(1, 10)).reported_k == (1,)


def test_end_to_end_with_a_tiny_model(
    tiny_gptbigcode_dir, engine_cache_dir, sandbox: Sandbox, tmp_path
) -> None:
    import json

    from engine import load_model

    model = load_model(tiny_gptbigcode_dir, backend="transformers")
    config = HumanEvalConfig(greedy=True, max_new_tokens=16, limit=2)
    report = run_humaneval(model, config, sandbox=sandbox, out_dir=tmp_path, progress=False)
    assert report["problems"] == 2 and report["samples"] == 2
    # the samples are the model's greedy completions, cut at the stop sequences
    problems = load_problems(limit=2)
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert [s["task_id"] for s in samples] == list(problems)
    for sample, problem in zip(samples, problems.values(), strict=True):
        raw = model.generate(problem["prompt"], max_new_tokens=16, temperature=0.0, stop=STOP_SEQUENCES)
        assert sample["completion"] == truncate_completion(raw)
    # each was run in the sandbox, and pass@1 is the share that passed
    passed = sum(s["status"] == "passed" for s in samples)
    assert sum(report["statuses"].values()) == 2 and report["passed_samples"] == passed
    assert report["scores"]["pass@1"] == pytest.approx(passed / 2)
    assert json.loads((tmp_path / "results.json").read_text())["scores"] == report["scores"]


def test_cli_prints_json(tiny_gptbigcode_dir, engine_cache_dir, capsys) -> None:
    import json

    from stackcoder_cli.main import main

    status = main(["train", "humaneval", "--model", str(tiny_gptbigcode_dir), "--backend", "transformers",
                   "--greedy", "--limit", "1", "--max-new-tokens", "8", "--json", "--workers", "1"])  # fmt: skip
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == 1 and "pass@1" in report["scores"]
    assert report["isolation"] in ("bwrap", "unshare", "rlimits")


def test_cli_rejects_a_bad_k(capsys) -> None:
    from stackcoder_cli.main import main

    assert main(["train", "humaneval", "--model", "x", "--k", "one"]) == 1
    assert "--k" in capsys.readouterr().err


def test_chat_variant_asks_through_the_models_chat_prompt(
    tiny_gptbigcode_dir, engine_cache_dir, sandbox: Sandbox, tmp_path
) -> None:
    from engine import load_model
    from training.humaneval import CHAT_REQUEST, CHAT_STOPS

    model = load_model(tiny_gptbigcode_dir, backend="transformers")
    config = HumanEvalConfig(greedy=True, max_new_tokens=16, limit=1, prompt_variant="chat")
    report = run_humaneval(model, config, sandbox=sandbox, progress=False)
    problem = next(iter(load_problems(limit=1).values()))
    prompt = model.chat_prompt(
        [{"role": "user", "content": CHAT_REQUEST.format(prompt=problem["prompt"])}], context=""
    )
    raw = model.generate(prompt, max_new_tokens=16, temperature=0.0, stop=CHAT_STOPS)
    sample = report["per_problem"][problem["task_id"]]["samples"][0]
    assert sample["completion"] == chat_answer_code(raw, problem["entry_point"])
