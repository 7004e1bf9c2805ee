"""The self-instruct pipeline: self-validation in the sandbox, dedup, resumption, generation over HTTP."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from training.sandbox import Limits, Sandbox
from training.self_instruct.pipeline import STAGES, SelfInstructConfig, format_summary, run_pipeline
from training.self_instruct.responses import split_response
from training.self_instruct.store import StageFile
from training.self_instruct.validate import build_dataset, validate

LIMITS = Limits(cpu_seconds=2, wall_seconds=4)

SEED_LIB = '''import math


def clamp(value: float, low: float, high: float) -> float:
    """Limit value to the closed interval [low, high] and return it."""
    return max(low, min(high, value))


def hypotenuse(a: float, b: float) -> float:
    """Length of the hypotenuse of a right triangle with legs a and b."""
    return math.sqrt(a * a + b * b)


def mean_of(values: list) -> float:
    """Arithmetic mean of a non-empty list of numbers."""
    return sum(values) / len(values)
'''


def _response(code: str, tests: str) -> str:
    return f"Here is the approach.\n\n```python\n{code}\n```\n\nTests:\n\n```python\n{tests}\n```"


PASSING = _response("def double(x):\n    return 2 * x", "assert double(2) == 4\nassert double(-1) == -2")
FAILING = _response("def double(x):\n    return x + 2", "assert double(3) == 6")
LOOPING = _response("def double(x):\n    while True:\n        pass", "assert double(1) == 2")
SNOOPING = _response(
    "import os\n\ndef double(x):\n    return open(os.path.expanduser('~/.ssh/id_rsa')).read()",
    "assert double(1)",
)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS, workers=2)


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    repo = tmp_path / "corpus" / "demo"
    repo.mkdir(parents=True)
    (repo / "LICENSE").write_text(
        "MIT License\n\nPermission is hereby granted, free of charge, to any person"
    )
    (repo / "lib.py").write_text(SEED_LIB)
    return tmp_path / "corpus"


def _candidate(text: str) -> dict:
    implementation, tests = split_response(text)
    return {"response": text, "implementation": implementation, "tests": tests}


def test_split_response_finds_implementation_and_tests() -> None:
    assert split_response(PASSING) == (
        "def double(x):\n    return 2 * x",
        "assert double(2) == 4\nassert double(-1) == -2",
    )
    assert split_response("no code at all") is None
    assert split_response("```python\ndef f():\n    return 1\n```") is None  # no tests
    assert split_response("```python\nassert 1\n```") is None  # tests without implementation


def test_self_validation_keeps_one_passing_response_and_deduplicates(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    responses = StageFile(tmp_path, "responses")
    records = [
        ("a", "Write double(x).", [FAILING, LOOPING, PASSING, PASSING]),
        ("b", "Write double(x) again.", [FAILING, SNOOPING]),
        ("c", "write   DOUBLE(x).", [PASSING]),  # same instruction as "a" once normalised
        ("d", "Write a doubling function.", [PASSING]),  # same response as "a"
    ]
    for key, instruction, texts in records:
        responses.append({"id": key, "kept": True, "seed_id": "s", "concepts": "c", "instruction": instruction,
                          "candidates": [_candidate(t) for t in texts]})  # fmt: skip
    validated = StageFile(tmp_path, "validated")
    counts = validate(responses.read(), validated, sandbox, progress=False)
    by_id = {r["id"]: r for r in validated.read()}
    assert by_id["a"]["kept"] and by_id["a"]["response"] == PASSING
    assert (
        by_id["a"]["statuses"] == ["failed", "cpu_limit", "passed", "passed"]
        or by_id["a"]["statuses"][1] == "timeout"
    )
    assert not by_id["b"]["kept"] and by_id["b"]["statuses"] == ["failed", "failed"]
    assert counts["executed"] == 8 and counts["passed"] == 4 and counts["kept"] == 3
    dataset = StageFile(tmp_path, "dataset")
    final = build_dataset(validated, dataset)
    assert [r["id"] for r in dataset.read()] == ["a"]
    assert final["dropped"] == {"duplicate_instruction": 1, "duplicate_response": 1}
    # Resuming runs nothing again.
    assert validate(responses.read(), validated, sandbox, progress=False)["executed"] == 8


class ScriptedModel:
    """Stands in for a model that follows the few-shot formats (a tiny random model never does):
    it answers by the label the prompt ends with, so every parser and the sandbox see real text."""

    name = "scripted"

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def generate(self, prompt: str, **kwargs) -> str:
        with self.lock:
            self.calls += 1
        if prompt.endswith("### Useful docstring\n"):
            return "Yes" if "hypotenuse" not in prompt.rsplit("### Function", 1)[1] else "No"
        if prompt.endswith("### Concepts\n"):
            name = re.findall(r"def (\w+)", prompt.rsplit("### Snippet", 1)[1])[0]
            return f"arithmetic on {name}, return values"
        if prompt.endswith("### Instruction\n"):
            topic = prompt.rsplit("### Concepts\n", 1)[1].split(",")[0]
            return f"Write a Python function `twice(x)` that returns two times x, practising {topic}."
        if "clamp" in prompt:  # one instruction gets only failing responses
            return FAILING
        return PASSING if kwargs.get("seed", 0) % 2 == 0 else FAILING


def test_pipeline_runs_every_stage_and_resumes(corpus: Path, tmp_path: Path, sandbox: Sandbox) -> None:
    model = ScriptedModel()
    config = SelfInstructConfig(responses_per_instruction=4, limits=LIMITS, concurrency=2, typecheck=False)
    summary = run_pipeline([str(corpus)], tmp_path / "run", model, config, sandbox=sandbox, progress=False)
    assert list(summary) == list(STAGES)
    assert summary["seeds"]["kept"] == 3
    assert summary["judge"]["kept"] == 2 and summary["judge"]["dropped"] == {"docstring_judged_poor": 1}
    assert summary["responses"]["kept"] == 2
    assert summary["validated"]["kept"] == 1  # clamp's instruction never got a passing response
    assert summary["dataset"]["kept"] == 1
    for earlier, later in zip(STAGES[1:-1], STAGES[2:], strict=False):
        assert summary[later]["input"] == summary[earlier]["kept"], (earlier, later)
    record = json.loads((tmp_path / "run" / "dataset.jsonl").read_text().splitlines()[0])
    assert record["response"] == PASSING and "twice" in record["instruction"]
    table = format_summary(summary)
    assert "validated" in table and "passed their tests" in table
    calls = model.calls
    again = run_pipeline([str(corpus)], tmp_path / "run", model, config, sandbox=sandbox, progress=False)
    assert model.calls == calls  # every stage was already complete
    assert again["dataset"] == summary["dataset"]


def test_interrupted_stage_resumes_without_repeating_requests(
    corpus: Path, tmp_path: Path, sandbox: Sandbox
) -> None:
    model = ScriptedModel()
    config = SelfInstructConfig(until="concepts", judge=False, limits=LIMITS, typecheck=False)
    run_pipeline([str(corpus)], tmp_path / "run", model, config, sandbox=sandbox, progress=False)
    concepts = StageFile(tmp_path / "run", "concepts")
    first = list(concepts.read())
    # Simulate a crash after the first record: drop the others and the completion marker.
    concepts.reset()
    concepts.append(first[0])
    model.calls = 0
    run_pipeline([str(corpus)], tmp_path / "run", model, config, sandbox=sandbox, progress=False)
    assert model.calls == len(first) - 1
    assert len(list(concepts.read())) == len(first)


def test_generation_through_the_engines_http_server(
    corpus: Path, tmp_path: Path, tiny_gptbigcode_dir, engine_cache_dir, sandbox: Sandbox
) -> None:
    """The pipeline drives a real OpenAI-compatible server (the engine's) through the http backend."""
    import uvicorn

    from engine import load_model
    from engine.openai_server import create_app

    local = load_model(tiny_gptbigcode_dir, backend="transformers", threads=1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(local), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        remote = load_model(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", backend="http")
        config = SelfInstructConfig(until="instructions", limits=LIMITS, typecheck=False)
        summary = run_pipeline(
            [str(corpus)], tmp_path / "run", remote, config, sandbox=sandbox, progress=False
        )
        remote.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        local.close()
    judged = list(StageFile(tmp_path / "run", "judge").read())
    assert len(judged) == 3  # one greedy answer per seed came back over HTTP
    assert all(r.get("reason") != "generation_error" for r in judged)
    assert summary["judge"]["input"] == summary["seeds"]["kept"] == 3
    assert summary["concepts"]["input"] == summary["judge"]["kept"]


def test_prompts_end_with_the_new_item() -> None:
    from training.self_instruct import prompts

    for build, text in (
        (prompts.judge_prompt, "def zeta_fn(q):\n    return q"),
        (prompts.concepts_prompt, "def zeta_fn(q):\n    return q"),
        (prompts.instruction_prompt, "zeta concepts"),
        (prompts.response_prompt, "Write zeta_fn."),
    ):
        prompt = build(text)
        last = prompt.rsplit("### Example", 1)[1]
        assert text.strip() in last, build.__name__
        assert prompt.count("### Example") >= 3


def test_cli_gathers_seeds_and_prints_the_summary(corpus: Path, tmp_path: Path, capsys) -> None:
    from stackcoder_cli.main import main

    status = main(["train", "self-instruct", str(corpus), "--out", str(tmp_path / "cli"), "--until", "seeds",
                   "--no-typecheck"])  # fmt: skip
    assert status == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("stage") and "seeds" in out
    assert len((tmp_path / "cli" / "seeds.jsonl").read_text().splitlines()) == 3
    assert main(["train", "self-instruct", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_prompts_shrink_to_fit_the_context_window(tiny_gptbigcode_dir, engine_cache_dir) -> None:
    from engine import load_model
    from training.self_instruct import judge, responses
    from training.self_instruct.stage import fit_prompt

    model = load_model(tiny_gptbigcode_dir, backend="transformers")
    try:
        short = {"code": "def f(x):\n    '''Return x.'''\n    return x\n"}
        full = fit_prompt(model, judge.prompt, short, judge.SHOTS, 3)
        assert full == judge.prompt(short, None)  # everything fits
        instruction = {"instruction": "Write f. " * 10}
        fitted = fit_prompt(model, responses.prompt, instruction, responses.SHOTS, model.context_window // 2)
        assert fitted is not None
        assert model.count_tokens(fitted) + model.context_window // 2 <= model.context_window
        huge = {"code": "def f(x):\n    '''Return x.'''\n" + "    x = x + 1\n" * 2000 + "    return x\n"}
        assert fit_prompt(model, judge.prompt, huge, judge.SHOTS, 3) is None
    finally:
        model.close()


def test_rerunning_an_upstream_stage_refreshes_the_later_ones(corpus: Path, tmp_path: Path, sandbox) -> None:
    model = ScriptedModel()
    config = SelfInstructConfig(until="concepts", judge=False, limits=LIMITS, typecheck=False)
    first = run_pipeline([str(corpus)], tmp_path / "run", model, config, sandbox=sandbox, progress=False)
    assert first["concepts"]["input"] == 3
    # Fewer seeds now: the later stages drop the records of the seeds that are gone.
    StageFile(tmp_path / "run", "seeds").reset()
    smaller = SelfInstructConfig(until="concepts", judge=False, limits=LIMITS, typecheck=False, max_seeds=1)
    model.calls = 0
    second = run_pipeline([str(corpus)], tmp_path / "run", model, smaller, sandbox=sandbox, progress=False)
    assert second["seeds"]["kept"] == 1
    assert second["concepts"]["input"] == 1 and second["concepts"]["kept"] == 1
    assert len(list(StageFile(tmp_path / "run", "concepts").read())) == 1
    assert model.calls == 0  # the remaining seed's concepts were already there


def test_more_seeds_asked_for_extend_a_finished_run(corpus: Path, tmp_path: Path, sandbox) -> None:
    # A finished run asked again with a larger --max-seeds gathers the seeds again and prompts
    # only for the new ones.
    model = ScriptedModel()
    one = SelfInstructConfig(until="concepts", judge=False, limits=LIMITS, typecheck=False, max_seeds=1)
    first = run_pipeline([str(corpus)], tmp_path / "run", model, one, sandbox=sandbox, progress=False)
    assert first["seeds"]["kept"] == 1 and model.calls == 1
    again = run_pipeline([str(corpus)], tmp_path / "run", model, one, sandbox=sandbox, progress=False)
    assert again["concepts"]["kept"] == 1 and model.calls == 1  # same settings: all reused
    three = SelfInstructConfig(until="concepts", judge=False, limits=LIMITS, typecheck=False, max_seeds=3)
    more = run_pipeline([str(corpus)], tmp_path / "run", model, three, sandbox=sandbox, progress=False)
    assert more["seeds"]["kept"] == 3 and more["concepts"]["kept"] == 3
    assert model.calls == 3  # the first seed's concepts were kept
