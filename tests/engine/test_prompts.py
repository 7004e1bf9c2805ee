"""Prompt formats: FIM spellings per family, PSM/SPM order, repository context, chat styles."""

from __future__ import annotations

import pytest

from engine.prompts import (
    CHAT_STYLES,
    FIM_FORMATS,
    build_chat_prompt,
    build_fim_prompt,
    chat_stop_strings,
    detect_chat_style,
    detect_fim_format,
    prompt_suffix,
)
from engine.types import Snippet

STARCODER2_VOCAB = ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"]
STARCODER2_VOCAB += ["<repo_name>", "<file_sep>", "def", "Ġreturn"]


@pytest.mark.parametrize(
    ("vocab", "expected"),
    [
        (STARCODER2_VOCAB, "starcoder"),
        (["<|endoftext|>", "<fim-prefix>", "<fim-middle>", "<fim-suffix>", "<fim-pad>"], "santacoder"),
        (["<s>", "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"], "codellama"),
        (["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<｜end▁of▁sentence｜>"], "deepseek-coder"),
        (
            ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_sep|>", "<|repo_name|>"],
            "qwen2.5-coder",
        ),
    ],
)
def test_detects_each_format_from_its_special_tokens(vocab: list[str], expected: str) -> None:
    fmt = detect_fim_format(vocab)
    assert fmt is not None and fmt.name == expected


def test_no_fim_tokens_means_no_format() -> None:
    assert detect_fim_format(["<|endoftext|>", "def", "Ġreturn", "<fim_prefix>"]) is None


def test_starcoder1_vocabulary_has_no_repository_context() -> None:
    fmt = detect_fim_format(["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"])
    assert fmt is not None and fmt.name == "starcoder"
    assert fmt.file_sep is None and fmt.repo_name is None and not fmt.has_repo_context
    assert fmt.pad == "<fim_pad>"


def test_detects_format_from_a_real_tokenizer(tiny_gptbigcode_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gptbigcode_dir)
    fmt = detect_fim_format(tokenizer.get_vocab())
    assert fmt == FIM_FORMATS["starcoder"]
    # Every token of the format is one token of the tokenizer.
    for token in (fmt.prefix, fmt.suffix, fmt.middle, fmt.pad, fmt.file_sep, fmt.repo_name):
        assert len(tokenizer(token, add_special_tokens=False).input_ids) == 1


@pytest.mark.parametrize(
    ("name", "psm", "spm"),
    [
        ("starcoder", "<fim_prefix>P<fim_suffix>S<fim_middle>", "<fim_prefix><fim_suffix>S<fim_middle>P"),
        ("santacoder", "<fim-prefix>P<fim-suffix>S<fim-middle>", "<fim-prefix><fim-suffix>S<fim-middle>P"),
        ("codellama", "<PRE> P <SUF>S <MID>", "<PRE>  <SUF>S <MID>P"),
        (
            "deepseek-coder",
            "<｜fim▁begin｜>P<｜fim▁hole｜>S<｜fim▁end｜>",
            "<｜fim▁begin｜><｜fim▁hole｜>S<｜fim▁end｜>P",
        ),
        (
            "qwen2.5-coder",
            "<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>",
            "<|fim_prefix|><|fim_suffix|>S<|fim_middle|>P",
        ),
    ],
)
def test_psm_and_spm_order(name: str, psm: str, spm: str) -> None:
    fmt = FIM_FORMATS[name]
    assert build_fim_prompt(fmt, "P", "S") == psm
    assert build_fim_prompt(fmt, "P", "S", order="spm") == spm


def test_spm_prompt_only_grows_while_typing() -> None:
    fmt = FIM_FORMATS["starcoder"]
    before = build_fim_prompt(fmt, "def f(x):\n    ret", "\n\nprint(f(1))\n", order="spm")
    after = build_fim_prompt(fmt, "def f(x):\n    retu", "\n\nprint(f(1))\n", order="spm")
    assert after.startswith(before)


@pytest.mark.parametrize(
    ("suffix", "shown"),
    [
        (")\nreturn x\n", "\nreturn x\n"),  # an auto-closed bracket
        ('")]\n', "\n"),  # a quote and brackets
        ("  )", ""),  # the last line of the file
        ("", ""),
        ("\nreturn x\n", "\nreturn x\n"),
        (") + 1\n", ") + 1\n"),  # code after the cursor stays
        ("x)\n", "x)\n"),
    ],
)
def test_prompt_suffix_leaves_out_only_closers_after_the_cursor(suffix: str, shown: str) -> None:
    assert prompt_suffix(suffix) == shown


def test_an_auto_closed_bracket_leaves_the_spm_prompt_unchanged() -> None:
    fmt = FIM_FORMATS["starcoder"]
    rest = "\n\nprint(area(2, 3))\n"
    before = build_fim_prompt(fmt, "def area(w, h):\n    return max", prompt_suffix(rest), order="spm")
    after = build_fim_prompt(fmt, "def area(w, h):\n    return max(", prompt_suffix(")" + rest), order="spm")
    assert after.startswith(before)  # typing the opener only appended to the prompt


def test_unknown_order_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="psm, spm"):
        build_fim_prompt(FIM_FORMATS["starcoder"], "a", "b", order="pms")


def test_starcoder2_repository_context() -> None:
    snippets = [Snippet("pkg/util.py", "def helper():\n    return 1"), Snippet("pkg/b.py", "X = 2\n")]
    prompt = build_fim_prompt(
        FIM_FORMATS["starcoder"],
        "import util\n",
        "\n",
        snippets=snippets,
        repo_name="me/proj",
        path="pkg/main.py",
    )
    assert prompt == (
        "<repo_name>me/proj"
        "<file_sep>pkg/util.py\ndef helper():\n    return 1\n"
        "<file_sep>pkg/b.py\nX = 2\n"
        "<file_sep>pkg/main.py\n"
        "<fim_prefix>import util\n<fim_suffix>\n<fim_middle>"
    )


def test_qwen_repository_context_puts_a_newline_after_the_name() -> None:
    prompt = build_fim_prompt(FIM_FORMATS["qwen2.5-coder"], "a", "b", repo_name="r", path="x.py")
    assert prompt == "<|repo_name|>r\n<|file_sep|>x.py\n<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>"


def test_no_context_means_a_bare_fim_prompt() -> None:
    fmt = FIM_FORMATS["starcoder"]
    assert build_fim_prompt(fmt, "a", "b") == "<fim_prefix>a<fim_suffix>b<fim_middle>"


def test_snippets_without_repository_tokens_become_comment_headed_blocks() -> None:
    snippets = [Snippet("src/util.ts", "export const one = 1;")]
    prompt = build_fim_prompt(
        FIM_FORMATS["santacoder"], "let x = ", ";\n", snippets=snippets, path="src/a.ts"
    )
    assert prompt == (
        "<fim-prefix>// Path: src/util.ts\nexport const one = 1;\n\n// Path: src/a.ts\n"
        "let x = <fim-suffix>;\n<fim-middle>"
    )
    spm = build_fim_prompt(
        FIM_FORMATS["santacoder"], "x = ", "\n", snippets=[Snippet("u.py", "Y = 1\n")], order="spm"
    )
    assert spm == "<fim-prefix><fim-suffix>\n<fim-middle># Path: u.py\nY = 1\n\nx = "


def test_stop_tokens_of_a_format() -> None:
    stops = FIM_FORMATS["starcoder"].stop_tokens
    assert {"<|endoftext|>", "<fim_pad>", "<file_sep>", "<fim_prefix>"} <= set(stops)
    assert "<EOT>" in FIM_FORMATS["codellama"].stop_tokens


# --------------------------------------------------------------------------- chat


def test_instruct_prompt() -> None:
    prompt = build_chat_prompt([{"role": "user", "content": "Sort a list."}], style="instruct")
    assert prompt.endswith("### Instruction\nSort a list.\n\n### Response\n")


def test_multi_turn_instruct_prompt_keeps_the_order() -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer one"},
        {"role": "user", "content": "second"},
    ]
    prompt = build_chat_prompt(messages, style="instruct")
    assert prompt.index("first") < prompt.index("answer one") < prompt.index("second")
    assert prompt.endswith("### Instruction\nsecond\n\n### Response\n")


def test_tech_assistant_prompt_has_few_shot_turns_and_context() -> None:
    prompt = build_chat_prompt(
        [{"role": "user", "content": "Explain this."}], style="tech_assistant", context="x = 1\n"
    )
    assert prompt.count("Human:") == len(CHAT_STYLES["tech_assistant"].few_shot) + 1
    assert prompt.endswith(
        "Human: Here is the code I am working on:\n```\nx = 1\n```\n\nExplain this.\n\nAssistant:"
    )
    assert "\nHuman:" in chat_stop_strings("tech_assistant")


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "empty"),
        ([{"role": "robot", "content": "hi"}], "user, assistant"),
        ([{"role": "user", "content": 3}], "string"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "last message"),
    ],
)
def test_bad_conversations_are_rejected(messages, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_chat_prompt(messages, style="instruct")


def test_unknown_chat_style_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="instruct, tech_assistant"):
        chat_stop_strings("alpaca")


class _Tok:
    def __init__(self, template: str | None) -> None:
        self.chat_template = template


def test_detect_chat_style() -> None:
    assert detect_chat_style(_Tok(None), "starcoder2-15b-instruct-v0.1") == "instruct"
    assert detect_chat_style(_Tok("{{ '### Instruction\\n' }}"), "my-model") == "instruct"
    assert detect_chat_style(_Tok(None), "starcoderbase-1b") == "tech_assistant"
    assert detect_chat_style(None, "tiny_starcoder_py") == "tech_assistant"
