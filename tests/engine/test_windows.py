"""Document windows (``engine.windows``): where a window begins, how it is found again after
edits, and the ``auto`` order choosing the window prompt at a new place once its window is held."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.windows import find_window, near_suffix, new_window_start, window_key, window_text

DOCUMENT = "".join(f"def function_{i}(value):\n    return value * {i}\n\n" for i in range(200))


def test_a_new_window_begins_at_a_line_start_half_a_window_above_the_cursor() -> None:
    cursor = len(DOCUMENT) // 2
    start = new_window_start(DOCUMENT[:cursor], 1000)
    assert DOCUMENT[start - 1] == "\n"
    assert cursor - 500 <= start < cursor - 500 + 40  # the first line start from there
    assert new_window_start(DOCUMENT[:300], 1000) == 0  # near the top: the document's start


def test_a_window_ends_at_a_line_end_and_never_exceeds_its_size() -> None:
    text = window_text(DOCUMENT, 100, 1000)
    assert len(text) <= 1000 and text.endswith("\n") and DOCUMENT[100:].startswith(text)
    assert window_text(DOCUMENT, len(DOCUMENT) - 50, 1000) == DOCUMENT[-50:]  # the document's end


def test_a_window_is_found_again_by_its_first_lines_after_edits_below_them() -> None:
    start = new_window_start(DOCUMENT[: len(DOCUMENT) // 2], 1000)
    key = window_key(window_text(DOCUMENT, start, 1000))
    assert len(key) >= 120 and key.endswith("\n")
    edited = DOCUMENT[: start + 400] + "    # a new comment\n" + DOCUMENT[start + 400 :]
    cursor = start + 700
    assert find_window(edited[:cursor], [key], 1000) == start
    # too close to its start (less than a quarter window above the cursor) or too far below it
    assert find_window(edited[: start + 200], [key], 1000) is None
    assert find_window(edited[: start + 1500], [key], 1000) is None
    # a window at the document's start serves cursors however close to it
    top = window_key(window_text(DOCUMENT, 0, 1000))
    assert find_window(DOCUMENT[: len(top) + 30], [top], 1000) == 0
    # lines inserted above it: found where its text moved
    moved = DOCUMENT[:start] + "# moved\n" + DOCUMENT[start:]
    assert find_window(moved[: cursor + 8], [key], 1000) == start + 8
    # its first lines changed: not found
    changed = DOCUMENT[: start + 10] + "# changed\n" + DOCUMENT[start + 10 :]
    assert find_window(changed[: cursor + 10], [key], 1000) is None


def test_the_near_suffix_is_whole_lines_within_its_tokens() -> None:
    suffix = DOCUMENT[:2000]

    def count(text: str) -> int:
        return len(text.split())

    near = near_suffix(count, suffix, 20)
    assert suffix.startswith(near) and near.endswith("\n") and 0 < count(near) <= 20


llama_cpp = pytest.importorskip("llama_cpp", reason="the [llama] extra is not installed")


@pytest.fixture(scope="module")
def model(tiny_gptbigcode_dir: Path, engine_cache_dir: Path):
    from engine import load_model

    with load_model(tiny_gptbigcode_dir, backend="llamacpp", threads=1, max_prompt_tokens=400) as loaded:
        yield loaded


def _place(fraction: float) -> tuple[str, str]:
    cut = DOCUMENT.rfind("\n", 0, int(len(DOCUMENT) * fraction)) + 1
    return DOCUMENT[:cut] + "    ", DOCUMENT[cut:]


def test_auto_order_runs_spm_until_a_window_is_held_then_the_window_prompt_at_nearby_places(model) -> None:
    from engine.types import CompletionRequest

    model.backend.forget_prompt()
    model.forget_windows()
    model.fim_order = "auto"
    prefix, suffix = _place(0.5)
    first = model.complete(prefix, suffix, max_new_tokens=6, use_cache=False)
    assert first.prompt_order == "spm"  # nothing held: the prompt typing keeps cheap
    assert model.warm_window(CompletionRequest("doc", prefix, suffix)) > 0
    near_prefix, near_suffix_text = _place(0.51)
    near = model.complete(near_prefix, near_suffix_text, max_new_tokens=6, use_cache=False)
    assert near.prompt_order == "window"
    # the same text as the window prompt evaluated from scratch
    model.backend.forget_prompt()
    model.fim_order = "window"
    try:
        fresh = model.complete(near_prefix, near_suffix_text, max_new_tokens=6, use_cache=False)
    finally:
        model.fim_order = "auto"
    assert fresh.raw == near.raw
    # far from every window: SPM again
    model.backend.forget_prompt()
    far = model.complete(*_place(0.9), max_new_tokens=6, use_cache=False)
    assert far.prompt_order == "spm"


def test_a_window_prompt_evaluates_only_the_suffix_after_the_held_head(model) -> None:
    from engine.types import CompletionRequest

    model.backend.forget_prompt()
    model.forget_windows()
    prefix, suffix = _place(0.3)
    model.warm_window(CompletionRequest("doc", prefix, suffix))
    near_prefix, near_suffix_text = _place(0.31)
    window, _ = model.window_prompt(CompletionRequest("doc", near_prefix, near_suffix_text))
    total = model.count_tokens(window)
    held = model.backend.held_tokens(window).held
    assert total - held <= model.near_suffix_tokens + 8  # the suffix, its FIM tokens, a token boundary


def test_a_chat_warm_up_holds_the_prompt_up_to_where_the_question_goes(model) -> None:
    from engine.service import CompletionService
    from engine.types import ChatRequest

    model.backend.forget_prompt()
    service = CompletionService(model)
    try:
        head = "The selected code:\nx = 1"  # the tiny model's few-shot chat prompt takes ~480 tokens
        history = ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."})
        evaluated = service.warm_chat(ChatRequest(messages=history, context=head)).result(timeout=60)
        assert evaluated > 0
        # the question's prompt, with question-dependent context after the head: all but the
        # question's part is held
        messages = [*history, {"role": "user", "content": "Which function doubles its value?"}]
        prompt = model.chat_prompt(messages, head + "\n\nFrom other.py (lines 1-2):\nx = 1")
        held = model.backend.held_tokens(prompt).held
        assert held >= evaluated - 4  # all but the fence after the context
        after_head = prompt[prompt.index(head) + len(head) :]
        assert model.count_tokens(prompt) - held <= model.count_tokens(after_head) + 4
        # another selection: held only up to where the selections differ
        other = model.chat_prompt(messages, "The selected code:\nimport os\n")
        assert model.backend.held_tokens(other).held <= model.count_tokens(other[: other.index("import os")])
    finally:
        service.stop_completions()
