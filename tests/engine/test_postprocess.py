"""Each post-processing rule on its own, then the whole pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.postprocess import (
    balance_brackets,
    decide_mode,
    is_useless,
    postprocess_completion,
    stop_at_block_end,
    trim_looping_line,
    trim_repetition,
    trim_suffix_overlap,
    truncate_to_single_line,
)

# --------------------------------------------------------------------------- single vs multi line


@pytest.mark.parametrize(
    ("prefix", "suffix", "mode"),
    [
        ("def f(x):\n    ", "\n", "multi"),  # empty line inside a block
        ("def f(x):", "\n", "multi"),  # end of a line that opens a block
        ("const o = {", "\n}", "multi"),
        ("x = compute(", ")\n", "single"),  # inside brackets closing on this line
        ("    total = su", "\n", "single"),  # middle of a statement
        ("print(", "x, y)\n", "single"),  # code after the cursor on the same line
        ("", "", "multi"),  # an empty file
    ],
)
def test_decide_mode(prefix: str, suffix: str, mode: str) -> None:
    assert decide_mode(prefix, suffix) == mode


def test_truncate_to_single_line() -> None:
    assert truncate_to_single_line("m(a, b)\n    return c\n") == "m(a, b)"
    assert truncate_to_single_line("\n\ny = 2\nz = 3") == "\ny = 2"
    assert truncate_to_single_line("\n\n") == ""
    assert truncate_to_single_line("\ny = 2", may_start_new_line=False) == ""


def test_no_new_line_inside_a_line_that_continues_after_the_cursor() -> None:
    assert postprocess_completion("\nfoo(1)", "print(", ")\n") == ""
    assert postprocess_completion("\nfoo(1)", "x = 1", "\n") == "\nfoo(1)"


# --------------------------------------------------------------------------- block end


def test_stops_when_the_block_of_an_opener_ends() -> None:
    text = "\n    return x + 1\n\nprint(f(2))\n"
    assert stop_at_block_end(text, "def f(x):") == "\n    return x + 1\n"


def test_stops_at_a_dedent_below_the_cursor_line() -> None:
    prefix = "def f(xs):\n    for x in xs:\n        "
    text = "y = x * 2\n        print(y)\n    return xs\ndef g():\n    pass"
    assert stop_at_block_end(text, prefix) == "y = x * 2\n        print(y)"


def test_block_end_keeps_a_closing_brace_at_the_opener_indent() -> None:
    text = "\n    return 1;\n}\nfunction g() {}"
    assert stop_at_block_end(text, "function f() {") == "\n    return 1;\n}"


def test_a_block_the_completion_opens_does_not_end_the_cursor_block() -> None:
    prefix = "def f(x):\n    "
    text = "if x:\n        return 1\n    return 2\n\nprint(f(1))"
    assert stop_at_block_end(text, prefix) == "if x:\n        return 1\n    return 2\n"


def test_writing_a_block_header_keeps_only_its_body() -> None:
    text = ":\n        return 1\n    return 2"
    assert stop_at_block_end(text, "def f(x):\n    if x") == ":\n        return 1"


def test_top_level_code_is_not_cut() -> None:
    text = "import os\nimport sys\n"
    assert stop_at_block_end(text, "") == text


# --------------------------------------------------------------------------- repetition


def test_cuts_a_repeated_line() -> None:
    assert trim_repetition("a = 1\nb = 2\nb = 2\nb = 2\nb = 2") == "a = 1\nb = 2"


def test_cuts_a_repeated_block() -> None:
    block = "x += 1\nprint(x)\n"
    assert trim_repetition("start()\n" + block * 4) == "start()\nx += 1\nprint(x)"


def test_two_equal_lines_are_not_repetition() -> None:
    text = "    pass\n\ndef g():\n    pass"
    assert trim_repetition(text) == text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("return self.n_n_n_n_n_n_n_n_n_n_n", ""),
        ('x = 1\nassertEqual(data, "test", "test", "test", "test", "te', "x = 1"),
        ('"""\n    A list of the number of the number of number of number of number of', '"""'),
        ("def _check_in_in_in_in(self):\n    pass", ""),
        ("self.x = x\nself.y = xyyyyyyyyyyyyyyyyyyyyyyyyyyyy", "self.x = x"),
        (
            '"""\n    A list of the `x` and `x` and `x` is a `x` and `x` is a `x` and `x` and `x` is `x` and '
            "`x` and `x` is `x` or `x` or `x` or `",
            '"""',
        ),
    ],
)
def test_cuts_the_line_caught_in_a_decoding_loop(text: str, kept: str) -> None:
    assert trim_looping_line(text) == kept


@pytest.mark.parametrize(
    "text",
    [
        "x = [0, 0, 0, 0, 0, 0, 0, 0]",  # no letter in the unit
        "s = 'aaaaaaaaaaaaaaaa'",  # one character repeated
        "if 'abab' in text:",  # a short unit repeated less than six times
        "print(f(1), f(1), f(1))",  # three repeats are code
        "# ------------------------------",
        "mask = value & 0xFFFFFFFFFFFFFFFF",  # a hex literal is a number, not a name
        "assert f('zzzzzzzzzzzzzzzz') == 1  # zzzzzzzzzzzzzzzzzz",  # a run inside a string or comment
        "return a.item(i, j) + a.item(k, l) - b.item(i, k)",  # repetitive, but short
    ],
)
def test_keeps_repeats_that_are_code(text: str) -> None:
    assert trim_looping_line(text) == text


def test_real_code_is_rarely_taken_for_a_loop() -> None:
    """Over the standard library's own lines, the loop detector flags almost nothing."""
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    lines = []
    for path in sorted(stdlib.glob("*.py")):
        lines += path.read_text(encoding="utf-8", errors="replace").split("\n")
    lines = lines[::4]  # a quarter keeps the test quick
    flagged = [line for line in lines if trim_looping_line(line) != line]
    assert len(lines) > 25_000
    assert len(flagged) < len(lines) / 5_000, flagged[:20]


def test_a_docstring_opener_left_alone_by_a_loop_is_dropped() -> None:
    raw = '"""\n    A list of the number of the number of number of number of number of number of'
    assert postprocess_completion(raw, "for i in range(10):\n    ", "\n", mode="multi") == ""
    # with words before the loop, they stay
    raw = "total = 0\n    n_n_n_n_n_n_n_n_n_n"
    assert postprocess_completion(raw, "def f():\n    ", "\n", mode="multi") == "total = 0"


def test_a_looping_single_line_completion_is_dropped() -> None:
    assert postprocess_completion("n_n_n_n_n_n_n_n_n_n_n_n_n", "    return self.", "\n") == ""


@pytest.mark.parametrize("text", ["", "   \n\t ", "))))))))))", "= = = = = = = = = ="])
def test_useless_output(text: str) -> None:
    assert is_useless(text)


@pytest.mark.parametrize("text", ["x", "return a + b", "# ---- section ----"])
def test_useful_output(text: str) -> None:
    assert not is_useless(text)


# --------------------------------------------------------------------------- suffix overlap


def test_trims_lines_that_rewrite_what_follows_the_cursor() -> None:
    suffix = "\n    return result\n\nprint(f(1))\n"
    text = "\n    result = x * 2\n    return result\n\nprint(f(1))"
    assert trim_suffix_overlap(text, suffix) == "\n    result = x * 2"


def test_a_blank_cursor_line_can_repeat_the_next_line_at_once() -> None:
    suffix = "\n    return result\n"
    assert trim_suffix_overlap("return result", suffix, "def f():\n    ") == ""
    assert trim_suffix_overlap("x = 1\n    return result", suffix, "def f():\n    ") == "x = 1"
    # When the user is writing the cursor's line, its first line is new code.
    assert trim_suffix_overlap("return result", suffix, "def f():\n    y = ") == "return result"


def test_keeps_lines_that_only_resemble_the_suffix() -> None:
    suffix = "\n    return result\n"
    text = "\n    result = x * 2\n    result += 1"
    assert trim_suffix_overlap(text, suffix) == text


def test_trims_a_repeated_rest_of_line() -> None:
    assert trim_suffix_overlap("a, b, key=1)", ", key=1)\n") == "a, b"


def test_trims_repeated_punctuation_after_the_cursor() -> None:
    assert trim_suffix_overlap("=None, c=3):", "):\n    pass\n") == "=None, c=3"
    assert trim_suffix_overlap(' world")', '")\n') == " world"


def test_brackets_alone_are_left_to_the_bracket_rule() -> None:
    assert trim_suffix_overlap("f(a))", ")\n") == "f(a))"


# --------------------------------------------------------------------------- brackets


def test_removes_closers_that_follow_the_cursor() -> None:
    assert balance_brackets("f(a))", "print(", ")\n") == "f(a)"
    assert balance_brackets("x[0]])", "foo([", "])\n") == "x[0]"


def test_ends_where_it_closes_a_bracket_the_text_after_the_cursor_closes() -> None:
    # the model went on past the closer the editor already put after the cursor
    assert balance_brackets("x) + 1", "print(", ")\n") == "x"
    assert balance_brackets("x, y):", "def f(", "):\n") == "x, y"
    assert balance_brackets("1), 2]", "xs = [f(", ")]\n") == "1"
    # a closer of the output's own bracket is no reason to stop
    assert balance_brackets("g(x) + 1", "print(", ")\n") == "g(x) + 1"
    # nothing after the cursor closes the bracket: the output's closer stays
    assert balance_brackets("x) + 1", "print(", "\n") == "x) + 1"


def test_keeps_closers_that_close_its_own_brackets() -> None:
    assert balance_brackets("f(a)", "print(", ")\n") == "f(a)"
    assert balance_brackets("a", "print(", ")\n") == "a"


def test_closes_brackets_it_opened_at_the_end_of_a_line() -> None:
    assert balance_brackets("compute(a, [1, 2", "x = ", "\n") == "compute(a, [1, 2])"


def test_closes_brackets_it_opened_before_the_closers_after_the_cursor() -> None:
    # cut short by the token limit inside the editor's auto-closed bracket
    assert balance_brackets("os.path.join(a, f(b", "n = len(", ")\n") == "os.path.join(a, f(b))"
    # code after the cursor: left alone
    assert balance_brackets("f(b", "n = len(", ") + 1\n") == "f(b"


def test_does_not_close_brackets_opened_before_the_cursor() -> None:
    assert balance_brackets("a,", "call(", "\n") == "a,"


def test_brackets_in_strings_and_comments_are_ignored() -> None:
    assert balance_brackets('print(")")', "x = ", "\n") == 'print(")")'
    assert balance_brackets("f(a)  # (", "y = ", "\n") == "f(a)  # ("


# --------------------------------------------------------------------------- pipeline


def test_pipeline_single_line_in_brackets() -> None:
    # the editor's ")" after the cursor closes add(: the line reads result = add(a, b)
    assert postprocess_completion("a, b))\nprint(1)\n", "result = add(", ")\n") == "a, b"


def test_pipeline_multi_line_function_body() -> None:
    prefix = "def area(r):\n"
    raw = "    return 3.14 * r * r\n\n\ndef perimeter(r):\n    return 2 * 3.14 * r\n"
    assert postprocess_completion(raw[4:], prefix + "    ", "\n", mode="auto") == "return 3.14 * r * r"
    assert postprocess_completion("\n" + raw, "def area(r):", "\n") == "\n    return 3.14 * r * r"


def test_pipeline_drops_repetitive_and_empty_output() -> None:
    assert postprocess_completion("\n\n   \n", "x = ", "\n") == ""
    assert postprocess_completion("]]]]]]]]]]]]", "x = ", "\n") == ""


def test_pipeline_forced_modes() -> None:
    raw = "a = 1\nb = 2"
    assert postprocess_completion(raw, "", "", mode="single") == "a = 1"
    assert postprocess_completion(raw, "x", "", mode="multi") == "a = 1\nb = 2"


def test_unknown_mode_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="auto, single, multi"):
        postprocess_completion("x", "", "", mode="block")


# An answer the embedded model streamed in the chat panel before answers were checked for loops.
LOOPING_ANSWER = (
    '"""\nA list of the ``None`` is a list of ``None`` and ``None`` and ``None`` is a list of ``None`` '
    "and ``None`` and ``None`` is a list of ``None`` and ``None`` and ``None`` is a list of ``None`` and "
    "``None`` and ``None`` is ``None`` and ``None`` is ``None`` or ``None`` or ``None``"
)


def test_a_looping_answer_is_caught_early_as_it_streams() -> None:
    from engine.postprocess import answer_loops

    caught = next(n for n in range(len(LOOPING_ANSWER) + 1) if answer_loops(LOOPING_ANSWER[:n]))
    assert caught < len(LOOPING_ANSWER) * 0.8  # at the fourth copy of "is a list of ``None`` and ..."
    # the same words over and over across lines, not back to back within one line
    lines = "".join(f"return self.quantile_value(self.value) + {i % 2}\n" for i in range(8))
    assert answer_loops(lines)
    assert not answer_loops(lines[: len(lines) // 2])  # two copies of the pair: not yet a loop
    assert answer_loops("The value is self.n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n")


def test_real_answers_are_not_taken_for_loops() -> None:
    """Prose with lists, tables and repeated calls, and code, checked as they would stream: at
    every line end and in the middle of each line."""
    import sysconfig

    from engine.postprocess import answer_loops

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = [
        (stdlib / name).read_text(encoding="utf-8")
        for name in ("argparse.py", "dataclasses.py", "json/__init__.py")
    ]
    texts.append(
        "Run it three times:\n\n```\n$ python hello.py --count=3\nHello, Click!\nHello, Click!\nHello, Click!\n```\n"
        + "".join(f"* Version 0.{i} released on June {i + 1}, 2010\n" for i in range(12))
        + "".join(
            f"- [flake8-{n}](https://pypi.org/project/flake8-{n}/)\n"
            for n in ("bugbear", "django", "slots", "super", "self")
        )
        + "| a | b |\n| --- | --- |\n| 1 | 2 |\n| 1 | 2 |\n| 1 | 2 |\n"
    )
    for text in texts:
        at = 0
        for line in text.split("\n"):
            for end in (at + len(line) // 2, at + len(line)):
                assert not answer_loops(text[:end]), text[:end][-200:]
            at += len(line) + 1
