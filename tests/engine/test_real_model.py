"""The product's default model, for real: Qwen2.5-Coder from the catalog, served by llama.cpp.

Completions at several cursor positions are real Python, chat answers follow the model's own
chat template, the tokenizer rebuilt from the GGUF file tokenises exactly as llama.cpp does,
and broken model files get one clear sentence."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from engine.errors import CorruptModelError, UnsupportedModelError
from engine.loading import inspect_model

SOURCE = '''\
import json
from dataclasses import dataclass


@dataclass
class Point:
    x: float
    y: float

    def distance_to(self, other: "Point") -> float:
        return ((self.x - other.x) ** 2 + (self.y - other.y) ** 2) ** 0.5


def load_points(path: str) -> list[Point]:
    """Read a JSON list of {"x": ..., "y": ...} objects into points."""
    with open(path, encoding="utf-8") as handle:
        items = json.load(handle)
    return [Point(item["x"], item["y"]) for item in items]


def is_palindrome(text: str) -> bool:
    """Whether text reads the same backwards, ignoring case."""
    text = text.lower()
    return text == text[::-1]
'''

# (line to blank out and complete from its indentation, what a reasonable completion must all
# contain: greedy decoding differs between CPUs' kernels, e.g. `other.x - self.x` on AVX2)
HOLES = [
    (
        "        return ((self.x - other.x) ** 2 + (self.y - other.y) ** 2) ** 0.5",
        ("self.x", "other.x", "self.y", "other.y"),
    ),
    ("        items = json.load(handle)", ("json.load(handle)",)),
    ("    return text == text[::-1]", ("[::-1]",)),
]


def _hole(line: str) -> tuple[str, str]:
    start = SOURCE.index(line)
    indent = len(line) - len(line.lstrip())
    return SOURCE[: start + indent], SOURCE[start + len(line) :]


@pytest.mark.parametrize("line,expected", HOLES, ids=["method", "with-block", "return"])
def test_completions_are_real_python_at_several_cursor_positions(
    real_model, line: str, expected: tuple[str, ...]
) -> None:
    prefix, suffix = _hole(line)
    completion = real_model.complete(prefix, suffix, max_new_tokens=48, use_cache=False)
    assert all(part in completion.text for part in expected), completion.text
    ast.parse(prefix + completion.text + suffix)  # the filled-in file is valid Python
    assert "<|" not in completion.text


def test_at_a_new_place_in_a_held_window_the_completion_runs_the_window_prompt_and_is_real_python(
    real_model,
) -> None:
    from engine.types import CompletionRequest

    real_model.forget_windows()
    real_model.backend.forget_prompt()  # no state of an earlier request at the place (SPM would win)
    rested_prefix, rested_suffix = _hole(HOLES[1][0])  # the cursor rested in load_points
    assert real_model.warm_window(CompletionRequest("file:///points.py", rested_prefix, rested_suffix)) > 0
    prefix, suffix = _hole(HOLES[2][0])  # then the user goes a few lines down
    completion = real_model.complete(prefix, suffix, max_new_tokens=48, use_cache=False)
    try:
        assert completion.prompt_order == "window"
        assert "[::-1]" in completion.text, completion.text
        ast.parse(prefix + completion.text + suffix)
    finally:
        real_model.forget_windows()


def test_the_model_family_prompt_format_and_chat_template_are_the_models_own(real_model) -> None:
    assert real_model.family == "qwen2" and real_model.backend_name == "llamacpp"
    assert real_model.fim is not None and real_model.fim.name == "qwen2.5-coder"
    assert real_model.chat_style == "template"
    prompt = real_model.chat_prompt([{"role": "user", "content": "Explain this."}], "def f(): pass\n")
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    assert "def f(): pass" in prompt


def test_chat_answers_a_question_about_a_selection(real_model) -> None:
    selection = "def is_palindrome(text):\n    text = text.lower()\n    return text == text[::-1]\n"
    answer = "".join(
        real_model.chat(
            [{"role": "user", "content": "What does this function check? Answer in one sentence."}],
            context=selection,
            max_new_tokens=60,
            temperature=0.0,
        )
    )
    assert "palindrome" in answer.lower(), answer
    assert "<|im_end|>" not in answer and "<|im_start|>" not in answer


def test_the_tokenizer_rebuilt_from_the_gguf_file_matches_llama_cpp(real_model) -> None:
    text = SOURCE + "\n# ünïcødé → 🐍\n<|fim_prefix|>x<|fim_suffix|>y<|fim_middle|>\n\t\tz  =  1\r\n"
    ours = real_model.backend.encode(text)
    theirs = real_model.backend._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    assert ours == theirs


def test_a_truncated_gguf_file_is_refused_in_one_sentence(real_model_name: str, tmp_path: Path) -> None:
    source = inspect_model(real_model_name)
    assert source.gguf_file is not None
    cut = tmp_path / "cut.gguf"
    with source.gguf_file.open("rb") as whole, cut.open("wb") as part:
        part.write(whole.read(20_000_000))
    with pytest.raises(CorruptModelError, match="truncated"):
        inspect_model(cut)


def test_a_file_that_is_not_gguf_or_of_another_architecture_is_refused(tmp_path: Path) -> None:
    import gguf

    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(CorruptModelError, match="not a GGUF file"):
        inspect_model(bogus)
    other = tmp_path / "other.gguf"
    writer = gguf.GGUFWriter(str(other), "mamba")
    writer.add_context_length(128)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UnsupportedModelError, match="'mamba' model, which the engine cannot run"):
        inspect_model(other)


def test_a_folder_holding_one_gguf_file_loads_as_that_file(real_model_name: str, tmp_path: Path) -> None:
    source = inspect_model(real_model_name)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.gguf").symlink_to(source.gguf_file)
    assert inspect_model(folder).gguf_file == folder / "model.gguf"
    shutil.rmtree(folder)
