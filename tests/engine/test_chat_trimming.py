"""Fitting a long conversation into the context window: the oldest turns go first, and each message
is tokenised once (not the whole prompt again per dropped turn)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.model import CodeModel

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class RecordingBackend:
    """A backend with a real tokenizer that records the prompts it is asked to continue."""

    name = "recording"
    context_window = 2048

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.prompts: list[str] = []

    def stream(self, prompt: str, config: Any, cancel: Any = None) -> Iterator[str]:
        self.prompts.append(prompt)
        yield "Sure."

    def close(self) -> None:
        pass


def conversation(turns: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    words = ["def", "parse", "items", "return", "config", "value", "(", ")", "self", "for", "in", "\n"]
    messages = []
    for i in range(turns):
        role = "user" if i % 2 == 0 else "assistant"
        text = " ".join(rng.choice(words) for _ in range(rng.randint(3, 90)))
        messages.append({"role": role, "content": f"turn {i}: {text}"})
    return messages


def fitted_by_dropping_one_at_a_time(model: CodeModel, messages: list[dict[str, str]], room: int) -> str:
    """The prompt the one-turn-at-a-time loop keeps (the reference behaviour)."""
    while model.count_tokens(model.chat_prompt(messages, "")) > room and len(messages) > 1:
        messages = messages[1:]
    return model.chat_prompt(messages, "")


@pytest.fixture(scope="module")
def tokenizer(tiny_gptbigcode_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_gptbigcode_dir)


@pytest.mark.parametrize("style", ["tech_assistant", "template"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_long_chat_keeps_the_newest_turns_that_fit_and_tokenises_each_message_once(
    tokenizer: Any, style: str, seed: int
) -> None:
    if style == "template":
        tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
        tokenizer.chat_template = CHATML
    backend = RecordingBackend(tokenizer)
    model = CodeModel(backend, name="recording", family="gpt_bigcode", fim=None)
    assert model.chat_style == style
    messages = conversation(121, seed)
    room = model.context_window - 64
    expected = fitted_by_dropping_one_at_a_time(model, messages, room)
    full = model.chat_prompt(messages, "")

    tokenised: list[int] = []
    count = model.count_tokens

    def counting(text: str) -> int:
        tokenised.append(len(text))
        return count(text)

    model.count_tokens = counting  # type: ignore[method-assign]
    assert "".join(model.chat(messages, max_new_tokens=64, temperature=0.0)) == "Sure."
    prompt = backend.prompts[0]
    assert prompt == expected  # the same turns as dropping one at a time: the newest that fit
    assert count(prompt) <= room and "turn 120:" in prompt and "turn 0:" not in prompt
    # the full prompt once, each message once, and a few prompts of about the window's size
    # (dropping one turn at a time tokenised ~60 ever shorter copies of the full prompt)
    assert sum(tokenised) < 3 * len(full), (sum(tokenised), len(full))
