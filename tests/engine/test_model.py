"""The CodeModel facade (load_model, complete, stream, chat) and the completion service on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine import CancelToken, Completion, CompletionRequest, Snippet, load_model
from engine.backends.base import Backend
from engine.errors import BackendUnavailableError, ModelNotFoundError
from engine.model import CodeModel
from engine.service import CompletionService

PREFIX = (
    "import os\n\n\ndef read_config(path):\n    with open(path) as handle:\n        data = handle.read()\n"
)
SUFFIX = "\n\n\ndef main():\n    print(read_config('a.toml'))\n"


@pytest.fixture(scope="module")
def model(tiny_gptbigcode_dir: Path, engine_cache_dir: Path):
    with load_model(tiny_gptbigcode_dir, backend="ct2", threads=1) as loaded:
        yield loaded


def test_load_model_describes_the_model(model) -> None:
    assert model.family == "gpt_bigcode" and model.backend_name == "ct2"
    assert model.context_window == 1024
    assert model.fim is not None and model.fim.middle == "<fim_middle>"
    assert model.count_tokens("def f(x):\n    return x") == len(
        model.tokenizer("def f(x):\n    return x", add_special_tokens=False)["input_ids"]
    )


def test_complete_returns_a_completion_and_caches_it(model) -> None:
    model.cache.clear()
    first = model.complete(PREFIX, SUFFIX, max_new_tokens=16)
    assert isinstance(first, Completion)
    assert first.model == model.name and not first.cached and not first.cancelled
    assert first.prompt_tokens > 0 and first.generated_tokens > 0 and first.latency_ms > 0
    assert first.choices[0] == first.text and first.raw
    again = model.complete(PREFIX, SUFFIX, max_new_tokens=16)
    if first.text:
        assert again.cached and again.text == first.text
        typed = first.text[:1]
        through = model.complete(PREFIX + typed, SUFFIX, max_new_tokens=16)
        if len(first.text) > 1:
            assert through.cached and through.text == first.text[1:]


def test_the_prompt_budget_leaves_room_for_the_answer(model) -> None:
    saved = model.max_prompt_tokens
    try:
        assert model.set_prompt_budget(200, 16) == 200 == model.max_prompt_tokens
        window = model.context_window
        assert model.set_prompt_budget(10 * window, 64) == window - 64  # the answer must still fit
        assert model.set_prompt_budget(1, 16) == 16  # never below the minimum
    finally:
        model.max_prompt_tokens = saved


def test_complete_uses_budgeted_fim_prompt(model) -> None:
    long_prefix = "x = 1\n" * 2000
    prompt, tokens = model.build_prompt(
        long_prefix, SUFFIX, snippets=[Snippet("util.py", "def helper():\n    pass\n")]
    )
    assert tokens <= model.max_prompt_tokens
    assert prompt.startswith("<fim_prefix>") or "<fim_prefix>" in prompt
    assert model.count_tokens(prompt) < model.context_window
    completion = model.complete(long_prefix, SUFFIX, max_new_tokens=4, use_cache=False)
    assert completion.prompt_tokens <= model.max_prompt_tokens


@pytest.mark.parametrize("elide", [True, False])
def test_an_auto_closed_bracket_keeps_the_cached_prompt_state(model, elide: bool) -> None:
    """The editor inserts ")" when "(" is typed: with the closers left out of the prompt's suffix
    the request after the bracket reuses the cached head (only the typed token is run); shown
    to the model they change the SPM prompt's start, and a new head is run from scratch."""
    backend = model.backend
    model.elide_closing_rest = elide
    try:
        line = "        result = max"
        model.complete(PREFIX + line, SUFFIX, max_new_tokens=4, use_cache=False)
        heads = len(backend._static_heads)
        model.complete(PREFIX + line + "(", ")" + SUFFIX, max_new_tokens=4, use_cache=False)
        model.complete(PREFIX + line + "(d", ")" + SUFFIX, max_new_tokens=4, use_cache=False)
        assert len(backend._static_heads) == heads + (0 if elide else 1)
    finally:
        model.elide_closing_rest = True


def test_complete_single_line_mode_keeps_one_line(model) -> None:
    completion = model.complete("value = compute(", ")\n", max_new_tokens=32, mode="single", use_cache=False)
    assert "\n" not in completion.text.strip("\n")


def test_complete_several_choices(model) -> None:
    completion = model.complete(PREFIX, SUFFIX, max_new_tokens=8, n=3, seed=1, use_cache=False)
    assert 1 <= len(completion.choices) <= 3 and completion.text == completion.choices[0]


def test_complete_cancelled_before_start(model) -> None:
    cancel = CancelToken()
    cancel.cancel()
    completion = model.complete(PREFIX, SUFFIX, cancel=cancel, use_cache=False)
    assert completion.cancelled and completion.text == ""


def test_stream_and_generate_with_stop_strings(model) -> None:
    text = model.generate(PREFIX, max_new_tokens=24)
    assert text == "".join(model.stream(PREFIX, max_new_tokens=24))
    assert len(text) > 4, text  # enough text to stop inside
    stop = text[2:4]
    cut = model.generate(PREFIX, max_new_tokens=24, stop=[stop])
    assert cut == text[: text.index(stop)] and stop not in cut
    assert "".join(model.stream(PREFIX, max_new_tokens=24, stop=[stop])) == cut


def test_chat_streams_an_answer(model) -> None:
    messages = [{"role": "user", "content": "Write a function that adds two numbers."}]
    pieces = list(model.chat(messages, max_new_tokens=16, temperature=0.0))
    assert pieces and all(isinstance(p, str) for p in pieces)
    # a conversation and context far over the context window: the oldest turns are dropped, then
    # the end of the context, until the prompt and the answer fit
    huge = [
        {"role": "user", "content": "old question " * 400},
        {"role": "assistant", "content": "answer"},
    ] + messages
    prompts: list[str] = []
    stream = model.stream

    def recording_stream(prompt: str, **options):  # noqa: ANN202 - the model's own iterator
        prompts.append(prompt)
        return stream(prompt, **options)

    model.stream = recording_stream
    try:
        answer = list(model.chat(huge, context="line\n" * 3000, max_new_tokens=8, temperature=0.0))
    finally:
        del model.stream
    assert answer and prompts
    prompt = prompts[0]
    assert model.count_tokens(prompt) + 8 <= model.context_window
    assert messages[0]["content"] in prompt and "old question" not in prompt
    assert 0 < prompt.count("line\n") < 3000


def test_starcoder2_through_both_backends(tiny_starcoder2_dir: Path, engine_cache_dir: Path) -> None:
    ct2 = load_model(tiny_starcoder2_dir, quantization="float32", threads=1)
    ref = load_model(tiny_starcoder2_dir, backend="transformers", threads=1)
    assert ct2.family == ref.family == "starcoder2"
    assert ct2.generate(PREFIX, max_new_tokens=16) == ref.generate(PREFIX, max_new_tokens=16)
    assert (
        ct2.complete(PREFIX, SUFFIX, max_new_tokens=16).text
        == ref.complete(PREFIX, SUFFIX, max_new_tokens=16).text
    )


def test_bundle_and_default_model(
    tmp_path: Path, tiny_gptbigcode_dir: Path, engine_cache_dir: Path, monkeypatch
) -> None:
    shutil.copytree(tiny_gptbigcode_dir, tmp_path / "hf")
    (tmp_path / "stackcoder.json").write_text(json.dumps({"format": 1, "name": "mini", "hf": "hf"}))
    monkeypatch.setenv("STACKCODER_MODEL", str(tmp_path))
    model = load_model(threads=1)
    assert model.name == "mini"
    model.close()


def test_bad_backend_and_path(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="choose one of"):
        load_model(tmp_path, backend="onnx")
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path / "missing")


def _service(model) -> CompletionService:
    """A service on the shared module model (closing it would close the model)."""
    return CompletionService(model, workers=1)


def test_the_newest_request_of_a_document_supersedes_the_older(model) -> None:
    service = _service(model)
    try:
        older = service.submit(
            CompletionRequest(
                "file:///a.py", PREFIX, SUFFIX, max_new_tokens=400, mode="multi", use_cache=False
            )
        )
        newer = service.submit(
            CompletionRequest("file:///a.py", PREFIX + "    ", SUFFIX, max_new_tokens=8, use_cache=False)
        )
        other = service.submit(
            CompletionRequest("file:///b.py", PREFIX, SUFFIX, max_new_tokens=8, use_cache=False)
        )
        assert older.result(timeout=60).cancelled
        assert not newer.result(timeout=60).cancelled
        assert not other.result(timeout=60).cancelled
        assert service.counters().superseded == 1
    finally:
        service.stop_completions()


def test_a_request_superseded_while_its_context_is_gathered_never_runs(model) -> None:
    """``begin`` stops the document's older request even before that one was submitted."""
    service = _service(model)
    try:
        older = service.begin("file:///d.py")
        newer = service.begin("file:///d.py")
        assert older.cancelled and not newer.cancelled and service.busy("file:///d.py")
        stale = service.submit(CompletionRequest("file:///d.py", PREFIX, SUFFIX, use_cache=False), older)
        assert stale.result(timeout=1).cancelled
        fresh = service.submit(
            CompletionRequest("file:///d.py", PREFIX, SUFFIX, max_new_tokens=4, use_cache=False), newer
        )
        assert not fresh.result(timeout=60).cancelled
        service.end("file:///d.py", newer)
        assert not service.busy("file:///d.py")
        counters = service.counters()
        assert counters.superseded == 1 and counters.model_runs == 1
        # a request that ends without being submitted (nothing to complete) frees its document
        abandoned = service.begin("file:///d.py")
        service.end("file:///d.py", abandoned)
        assert not service.busy("file:///d.py")
    finally:
        service.stop_completions()


async def test_the_service_answers_asyncio_callers(model) -> None:
    service = _service(model)
    try:
        completion = await service.complete(
            CompletionRequest("file:///c.py", PREFIX, SUFFIX, max_new_tokens=4)
        )
        assert isinstance(completion, Completion)
    finally:
        service.stop_completions()


def test_prompt_budget_leaves_room_for_new_tokens_in_a_small_window(model) -> None:
    """A prompt budget larger than the context window is lowered so prompt + new tokens fit."""
    import textwrap

    source = Path(textwrap.__file__).read_text(encoding="utf-8")
    saved = model.max_prompt_tokens
    model.max_prompt_tokens = 100_000
    try:
        c = model.complete(source, "\n" + source[:2000], max_new_tokens=16, use_cache=False)
    finally:
        model.max_prompt_tokens = saved
    prompt, tokens = model.build_prompt(source, source[:2000], max_new_tokens=16)
    assert isinstance(c, Completion)
    assert model.count_tokens(prompt) + 16 <= model.context_window


class ScriptedBackend(Backend):
    """A backend answering each request with the next scripted list of pieces (and recording the
    temperature asked for), to drive the engine's chat logic without a model."""

    name = "scripted"
    context_window = 2048
    tokenizer = None

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = list(answers)
        self.temperatures: list[float] = []
        self.seeds: list[int | None] = []

    def stream(self, prompt, config, cancel=None):
        self.temperatures.append(config.temperature)
        self.seeds.append(config.seed)
        yield from self.answers.pop(0)

    def close(self) -> None:
        pass


def test_an_empty_chat_answer_is_drawn_again_hotter() -> None:
    question = [{"role": "user", "content": "How do I add an item?"}]
    backend = ScriptedBackend([["\n"], [" "], ["Use ", "append."]])
    model = CodeModel(backend, name="scripted", family="remote", fim=None)
    # The whitespace of the attempts that said nothing is not part of the answer.
    assert "".join(model.chat(question, temperature=0.2)) == "Use append."
    assert backend.temperatures == [0.2, 0.7, 1.0]

    silent = ScriptedBackend([["\n", "\n"], [" "], ["\n\n"]])
    model = CodeModel(silent, name="scripted", family="remote", fim=None)
    assert list(model.chat(question, temperature=0.2)) == []  # nothing to show: the panel says so

    answered = ScriptedBackend([["Call ", "add()."], ["never asked"]])
    model = CodeModel(answered, name="scripted", family="remote", fim=None)
    assert "".join(model.chat(question, temperature=0.2)) == "Call add()."
    assert answered.temperatures == [0.2]

    cancel = CancelToken()
    cancel.cancel()
    cancelled = ScriptedBackend([[], ["never asked"]])
    model = CodeModel(cancelled, name="scripted", family="remote", fim=None)
    assert list(model.chat(question, cancel=cancel)) == []
    assert len(cancelled.temperatures) == 1


class LoopingBackend(ScriptedBackend):
    """Streams one phrase for ever, and records whether the engine closed the stream."""

    def __init__(self, phrase: str) -> None:
        super().__init__([])
        self.phrase = phrase
        self.sent = 0
        self.closed = False

    def stream(self, prompt, config, cancel=None):
        try:
            while self.sent < config.max_new_tokens:
                self.sent += 1
                yield self.phrase
        finally:
            self.closed = True


def test_a_chat_answer_that_falls_into_a_loop_is_stopped_there() -> None:
    from engine.postprocess import answer_loops

    question = [{"role": "user", "content": "What does this list hold?"}]
    looping = LoopingBackend("is a list of ``None`` and ")
    model = CodeModel(looping, name="scripted", family="remote", fim=None)
    answer = "".join(model.chat(question, max_new_tokens=256))
    assert looping.closed and looping.sent < 12  # not 256 pieces
    assert answer_loops(answer) and answer.startswith("is a list of ``None`` and ")
    # an answer that merely repeats a line three times (program output) streams to its end
    output = ScriptedBackend([["Hello, Click!\n"] * 3 + ["That is all."]])
    model = CodeModel(output, name="scripted", family="remote", fim=None)
    assert "".join(model.chat(question)) == "Hello, Click!\n" * 3 + "That is all."


def test_typing_an_opener_types_through_the_suggestion_before_the_editors_closer() -> None:
    """The suggestion ``max(a, b)`` is on screen; the user types ``max(`` and the editor adds
    ``)`` after the cursor. The rest is served from the cache, fitted to that closer."""
    backend = ScriptedBackend([["max(a, b)\n"], ["never asked"]])
    model = CodeModel(backend, name="scripted", family="remote", fim=None)
    first = model.complete("x = ", "\n", max_new_tokens=8)
    assert first.text == "max(a, b)"
    assert model.cached("x = ma", "\n").text == "x(a, b)"
    through = model.complete("x = max(", ")\n", max_new_tokens=8)
    assert through.cached and through.text == "a, b"  # not "a, b)": the editor's ")" follows
    assert model.complete("x = max(a", ")\n", max_new_tokens=8).text == ", b"
    assert len(backend.answers) == 1  # the model ran once

    keyed_on_the_real_suffix = CodeModel(
        ScriptedBackend([["max(a, b)\n"]]),
        name="scripted",
        family="remote",
        fim=None,
        elide_closing_rest=False,
    )
    keyed_on_the_real_suffix.complete("x = ", "\n", max_new_tokens=8)
    assert keyed_on_the_real_suffix.cached("x = max(", ")\n") is None


def test_several_choices_are_sampled_hot_enough_each_with_its_own_seed() -> None:
    """Choices of a backend that does not batch are drawn one after the other, at least
    ``CHOICE_TEMPERATURE`` hot and with consecutive seeds, so that they differ."""
    from engine.model import CHOICE_TEMPERATURE

    backend = ScriptedBackend([["a = 1\n"], ["b = 2\n"], ["c = 3\n"]])
    model = CodeModel(backend, name="scripted", family="remote", fim=None)
    completion = model.complete("x = 0\n", "", n=3, temperature=0.2, seed=7, mode="single")
    assert backend.temperatures == [CHOICE_TEMPERATURE] * 3 and backend.seeds == [7, 8, 9]
    assert completion.choices == ["a = 1", "b = 2", "c = 3"] and completion.text == "a = 1"
    hotter = ScriptedBackend([["d = 4\n"], ["e = 5\n"]])
    CodeModel(hotter, name="scripted", family="remote", fim=None).complete(
        "x = 0\n", "", n=2, temperature=0.9
    )
    assert hotter.temperatures == [0.9, 0.9]


def test_text_out_of_the_budgets_reach_never_reaches_the_cache_or_the_prompt() -> None:
    """A long document is cut where typing does not move the cut: typing through the suggestion
    still hits the cache, and the prompt is what the whole document gives."""
    long_prefix = "".join(f"value_{i} = compute({i}, scale=2)\n" for i in range(3000)) + "total = "
    backend = ScriptedBackend([["value_1 + value_2\n"], ["never asked"]])
    model = CodeModel(backend, name="scripted", family="remote", fim=None, max_prompt_tokens=64)
    first = model.complete(long_prefix, "\nprint(total)\n", max_new_tokens=8)
    assert first.text == "value_1 + value_2" and first.prompt_tokens <= 64
    assert all(len(prefix) < len(long_prefix) for prefix, _suffix in model.cache._entries)
    through = model.complete(long_prefix + "value_1", "\nprint(total)\n", max_new_tokens=8)
    assert through.cached and through.text == " + value_2"
    assert model.build_prompt(long_prefix, "") == model.build_prompt(*model.reachable(long_prefix, ""))
