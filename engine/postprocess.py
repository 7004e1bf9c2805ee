"""Post-processing of raw fill-in-the-middle output into the completion shown to the user.

Each rule is a small function of the generated text and the cursor context; ``postprocess_completion``
applies them in order: pick single- or multi-line, cut at the end of the block, cut repeated lines
and lines caught in a loop, trim what repeats the text after the cursor, balance brackets against
it, drop useless output.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "MODES",
    "answer_loops",
    "balance_brackets",
    "cursor_line",
    "decide_mode",
    "fit_to_suffix",
    "is_useless",
    "postprocess_completion",
    "stop_at_block_end",
    "trim_looping_line",
    "trim_repetition",
    "trim_suffix_overlap",
    "truncate_to_single_line",
]

OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}
# A line ending with one of these opens an indented block below it.
BLOCK_OPENERS = (":", "{", "(", "[", "=>")
# The shortest repeated run of identical lines (or blocks of lines) cut as repetition.
REPEAT_RUN = 3
MAX_REPEAT_BLOCK = 4
# A unit of text with a letter in it repeated back to back this often inside one line is a
# decoding loop (``self.n_n_n_n_n_n``, ``"data", "data", "data", "data"``); two-character units
# need more repeats, since short literals like ``"abab"`` are real code.
LOOP_REPEATS = 4
LOOP_REPEATS_SHORT_UNIT = 6
MAX_LOOP_UNIT = 32
# One letter repeated this often inside a name (``self.y = xyyyyyyyyyyyyyyy``) is a loop too;
# in string literals and comments such runs are kept.
LOOP_LETTER_RUN = 12
# A line of at least this many words of which fewer than this share differ is a loop that
# wanders (``the `x` and `x` is a `x` and `x` and `x` is `x` or `x` ...``). Measured on the
# standard library and site-packages (4.5M lines): 0.016 % of real lines are that repetitive.
LOOP_MIN_WORDS = 16
LOOP_MAX_DISTINCT_SHARE = 0.3
# A chat or explain answer that ends in this many back-to-back copies of one stretch of two words
# or more is stuck (``is a list of ``None`` and ``None`` is a list of ``None`` and ``None`` ...``);
# a stretch with one word needs more copies (an ASCII diagram's ``v      v      v      v``).
# Checked as they would stream, prose with code (the installed packages' long descriptions) and
# code (400 standard library files) gave no false positive.
ANSWER_LOOP_REPEATS = 4
ANSWER_LOOP_SHORT_REPEATS = 8
ANSWER_LOOP_MIN_UNIT = 6
ANSWER_LOOP_MAX_UNIT = 400


def cursor_line(prefix: str, suffix: str) -> tuple[str, str]:
    """The text before the cursor on its line, and the text after it up to the end of the line."""
    return prefix[prefix.rfind("\n") + 1 :], suffix.split("\n", 1)[0]


def _indent(line: str) -> int:
    """Width of a line's leading whitespace (a tab counts as 4 columns)."""
    stripped = line.lstrip(" \t")
    return len(line[: len(line) - len(stripped)].expandtabs(4))


# --------------------------------------------------------------------------- single vs multi line


def decide_mode(prefix: str, suffix: str) -> str:
    """``"multi"`` on an empty line or after a block opener at the end of a line, else ``"single"``.

    Text after the cursor on the same line (other than closing brackets) always means single line.
    """
    before, after = cursor_line(prefix, suffix)
    if after.strip(" \t" + "".join(CLOSERS)):
        return "single"
    if not before.strip():
        return "multi"
    if after.strip():
        return "single"  # inside brackets that close on this line
    return "multi" if before.rstrip().endswith(BLOCK_OPENERS) else "single"


def truncate_to_single_line(text: str, *, may_start_new_line: bool = True) -> str:
    """Keep the first line; when the text starts on a new line (and ``may_start_new_line``, i.e.
    nothing follows the cursor on its line), keep that newline and the next line."""
    lead = len(text) - len(text.lstrip("\n"))
    if lead and text.strip() and may_start_new_line:
        return "\n" + text[lead:].split("\n", 1)[0]
    return text.split("\n", 1)[0]


# --------------------------------------------------------------------------- block end


def stop_at_block_end(text: str, prefix: str) -> str:
    """Cut the text before the first line that dedents out of the cursor's block.

    When the user is writing the cursor's line and it ends with a block opener (``def f():|``),
    the block ends at the next line indented no deeper than that line (closing brackets aside);
    otherwise at the first line indented less than the cursor's line.
    """
    before = prefix[prefix.rfind("\n") + 1 :]
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    first = before + lines[0]
    base = _indent(first) if first.strip() else _indent(before)
    opens_block = bool(before.strip()) and first.rstrip().endswith(BLOCK_OPENERS)
    kept = [lines[0]]
    for line in lines[1:]:
        if line.strip():
            depth = _indent(line)
            closes = line.lstrip().startswith(tuple(CLOSERS))
            if depth < base or (opens_block and depth <= base and not closes):
                break
        kept.append(line)
    return "\n".join(kept)


# --------------------------------------------------------------------------- repetition


def trim_repetition(text: str) -> str:
    """Cut a run of the same line, or the same block of up to 4 lines, repeated 3 times or more.

    The first occurrence is kept. Blank lines are ignored when comparing.
    """
    lines = text.split("\n")
    keys = [line.strip() for line in lines]
    for start in range(len(lines)):
        if not keys[start]:
            continue
        for size in range(1, MAX_REPEAT_BLOCK + 1):
            block = keys[start : start + size]
            if len(block) < size or not any(block):
                break
            repeats = 1
            while keys[start + repeats * size : start + (repeats + 1) * size] == block:
                repeats += 1
            if repeats >= REPEAT_RUN:
                return "\n".join(lines[: start + size])
    return text


_LOOP = re.compile(rf"(.{{2,{MAX_LOOP_UNIT}}}?)\1{{{LOOP_REPEATS - 1},}}")
_LETTER = re.compile(r"[^\W\d_]")
_LETTER_RUN = re.compile(rf"([^\W\d_])\1{{{LOOP_LETTER_RUN - 1},}}")
_NAME = re.compile(r"\b[^\W\d]\w*")


def _in_literal_or_comment(line: str, position: int) -> bool:
    """Whether ``position`` of ``line`` lies inside a quoted string or a comment started on the
    line (strings that span lines are not seen)."""
    quote = ""
    index = 0
    while index < position:
        char = line[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            return True
        index += 1
    return bool(quote)


def _letter_run_in_name(line: str) -> bool:
    """A name holding one letter ``LOOP_LETTER_RUN`` times or more in a row, outside strings
    and comments (hex literals such as ``0xFFFFFFFFFFFF`` are numbers, not names)."""
    if not _LETTER_RUN.search(line):
        return False
    for name in _NAME.finditer(line):
        if _LETTER_RUN.search(name.group()) and not _in_literal_or_comment(line, name.start()):
            return True
    return False


def _wanders(line: str) -> bool:
    """Many words with few distinct ones: a loop whose repeats are not back to back."""
    words = _NAME.findall(line)
    return len(words) >= LOOP_MIN_WORDS and len(set(words)) < LOOP_MAX_DISTINCT_SHARE * len(words)


def _loops(line: str) -> bool:
    """Whether ``line`` holds a decoding loop: a unit with a letter repeated back to back, one
    letter run on inside a name, or a long line of a few words over and over."""
    if _letter_run_in_name(line) or _wanders(line):
        return True
    position = 0
    while (found := _LOOP.search(line, position)) is not None:
        unit = found.group(1)
        repeats = len(found.group(0)) // len(unit)
        needed = LOOP_REPEATS_SHORT_UNIT if len(unit) == 2 else LOOP_REPEATS
        primitive = (unit + unit).find(unit, 1) == len(unit)  # not itself "aa" or "abab"
        if primitive and _LETTER.search(unit) and repeats >= needed:
            return True
        position = found.start() + 1
    return False


def trim_looping_line(text: str) -> str:
    """Cut the completion before the first line caught in a decoding loop.

    A small model that loses its way repeats a fragment until the token limit
    (``return self.n_n_n_n_n_n_n_n``); no part of such a line is worth showing, so it goes with
    everything after it. Repeats of units without letters (``0, 0, 0, 0``, ``----``) and runs of
    one character in strings (``"xxxxxxxxxxxxxxxx"``) are kept.
    """
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if _loops(line):
            return "\n".join(lines[:index])
    return text


def _repeats_at_end(text: str, repeats: int, min_words: int) -> bool:
    """The text ends in ``repeats`` back-to-back copies of one unit holding ``min_words`` words
    or more (the end may fall inside the last copy)."""
    last = text[-1:]
    for period in range(ANSWER_LOOP_MIN_UNIT, min(ANSWER_LOOP_MAX_UNIT, len(text) // repeats) + 1):
        if text[-1 - period] != last:  # cheap test first: most periods fail at the last character
            continue
        span = period * (repeats - 1)
        if text[-span:] == text[-span - period : -period] and len(_NAME.findall(text[-period:])) >= min_words:
            return True
    return False


def answer_loops(text: str) -> bool:
    """Whether a streamed answer (prose with code) has fallen into a loop at its end: it ends in
    the same few words over and over (``is a list of ``None`` and ``None`` is a list of ...``), or
    in one name run on (``self.n_n_n_n_n_n_n_n_n_n_n_n_n_n_n_n``). Cheap enough to ask after
    every streamed piece."""
    tail = text[-ANSWER_LOOP_SHORT_REPEATS * ANSWER_LOOP_MAX_UNIT :]
    return _repeats_at_end(tail, ANSWER_LOOP_REPEATS, 2) or _repeats_at_end(
        tail, ANSWER_LOOP_SHORT_REPEATS, 1
    )


_PERIODIC = re.compile(r"^(.{1,4}?)\1{7,}$", re.DOTALL)


def is_useless(text: str) -> bool:
    """Empty or whitespace-only output, or one short unit repeated 8 times or more (``))))))))``)."""
    stripped = text.strip()
    if not stripped:
        return True
    return bool(_PERIODIC.match(re.sub(r"\s+", "", stripped)))


# --------------------------------------------------------------------------- suffix overlap


def _following_lines(suffix: str) -> list[str]:
    """The non-blank lines after the cursor's line, stripped."""
    rest = suffix.split("\n", 1)[1] if "\n" in suffix else ""
    return [line.strip() for line in rest.split("\n") if line.strip()]


def _meaningful(line: str) -> bool:
    """A line worth matching against the suffix (not only brackets or punctuation)."""
    return len(re.sub(r"[\s()\[\]{};,:]", "", line)) >= 2


def trim_suffix_overlap(text: str, suffix: str, prefix: str = "") -> str:
    """Trim output that repeats the text after the cursor.

    The output is cut before the first generated line from which it re-writes the lines that follow
    the cursor (its first line counts too when the cursor's line is blank before and after the
    cursor); and a last line that ends with the rest of the cursor's line (when that rest is more
    than brackets) loses that repeated ending.
    """
    before, after = cursor_line(prefix, suffix)
    after = after.strip()
    following = _following_lines(suffix)
    lines = text.split("\n")
    start = 0 if not before.strip() and not after else 1
    if following and _meaningful(following[0]):
        for i in range(start, len(lines)):
            generated = [line.strip() for line in lines[i:] if line.strip()]
            window = min(len(generated), len(following), 3)
            if window and generated[:window] == following[:window]:
                text = "\n".join(lines[:i]).rstrip()
                break
    if after.strip("()[]{} \t"):  # more than brackets: those are left to ``balance_brackets``
        body = text.rstrip()
        if body.endswith(after):
            text = body[: len(body) - len(after)]
    return text


# --------------------------------------------------------------------------- brackets


def _bracket_events(text: str) -> list[tuple[int, str]]:
    """The brackets of ``text`` with their offsets, skipping string literals and ``#``/``//`` comments."""
    events: list[tuple[int, str]] = []
    quote, i = "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote or ch == "\n":
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch == "#" or text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                break
            continue
        elif ch in OPENERS or ch in CLOSERS:
            events.append((i, ch))
        i += 1
    return events


def _leading_closers(after: str) -> str:
    """The closing brackets the text after the cursor starts with (blanks between them allowed)."""
    return after[: len(after) - len(after.lstrip(" \t)]}"))]


def _open_brackets(before: str, text: str, supplied: str | None) -> tuple[str, list[tuple[str, bool]]]:
    """``text`` and the brackets still open at its end, as (opener, opened by the output).

    ``text`` is cut before its first closer of a bracket opened in ``before`` when that closer is
    ``supplied``, the first one the text after the cursor writes."""
    stack: list[tuple[str, bool]] = []
    for offset, ch in _bracket_events(before + text):
        if ch in OPENERS:
            stack.append((ch, offset >= len(before)))
        elif stack and stack[-1][0] == CLOSERS[ch]:
            if ch == supplied and offset >= len(before) and not stack[-1][1]:
                return text[: offset - len(before)], stack
            stack.pop()
    return text, stack


def balance_brackets(text: str, prefix: str, suffix: str) -> str:
    """Make the cursor's line balanced with the closing brackets that already follow the cursor.

    The output ends before a closer of a bracket opened before the cursor when the text after the
    cursor closes that bracket itself (``print(|)`` with output ``x) + 1`` gives ``x``); closers
    the output writes that the text after the cursor also writes are removed from the end of the
    output; brackets the output opens and nothing closes are closed when nothing but closing
    brackets follows the cursor on its line (a one-line output cut short inside ``len(|)``
    still leaves the line balanced).
    """
    before, after = cursor_line(prefix, suffix)
    leading = _leading_closers(after)
    text, stack = _open_brackets(before, text, next((ch for ch in leading if ch in CLOSERS), None))
    body = text.rstrip()
    trailing_ws = text[len(body) :]
    if not after.strip(" \t)]}") and "\n" not in text.strip("\n"):  # nothing but closers follows
        # the output closes what it opened; the closers after the cursor are the line's own
        while stack and stack[-1][1]:
            body += OPENERS[stack.pop()[0]]
    extra = []  # closers after the cursor that find no opener
    for ch in leading:
        if ch not in CLOSERS:
            continue
        if stack and stack[-1][0] == CLOSERS[ch]:
            stack.pop()
        else:
            extra.append(ch)
    for ch in reversed(extra):
        if body.endswith(ch):
            body = body[:-1]
        else:
            break
    return body + trailing_ws


# --------------------------------------------------------------------------- pipeline


def _single(text: str, prefix: str, suffix: str) -> str:
    return truncate_to_single_line(text, may_start_new_line=not cursor_line(prefix, suffix)[1].strip())


def _multi(text: str, prefix: str, suffix: str) -> str:
    return stop_at_block_end(text, prefix)


MODES: dict[str, Callable[[str, str, str], str]] = {"single": _single, "multi": _multi}


def postprocess_completion(text: str, prefix: str, suffix: str, *, mode: str = "auto") -> str:
    """Turn raw model output at the cursor into the completion to show ("" when there is none).

    ``mode`` is "single", "multi", or "auto" (decided from the cursor's line by ``decide_mode``).
    """
    if mode == "auto":
        mode = decide_mode(prefix, suffix)
    try:
        shape = MODES[mode]
    except KeyError:
        raise ValueError(f"unknown completion mode {mode!r}; known modes: auto, {', '.join(MODES)}") from None
    text = shape(text, prefix, suffix)
    text = trim_repetition(text)
    looped = trim_looping_line(text)
    if looped != text and not re.search(r"[^\W_]", looped):
        return ""  # what came before the loop is only punctuation (an opening `"""`, a bracket)
    return fit_to_suffix(looped, prefix, suffix)


def fit_to_suffix(text: str, prefix: str, suffix: str) -> str:
    """The last steps of ``postprocess_completion``: trim what repeats the text after the cursor,
    balance brackets against it, drop useless output. Also used on a cached suggestion shown
    before other text after the cursor (closers the editor inserted since)."""
    text = trim_suffix_overlap(text, suffix, prefix)
    text = balance_brackets(text, prefix, suffix)
    text = text.rstrip()
    return "" if is_useless(text) else text
