"""Document windows: fill-in-the-middle prompts that cursor places near each other share.

A prompt in SPM order begins with the text after the cursor, so a runtime that keeps processed
prompt state (llama.cpp) reuses none of it at a new place: on two AVX2 cores a 1.5B model then
spends ~25 s on a 1,536-token prompt. A PSM prompt begins with the text before the cursor; when
that text starts at the same line for every cursor in a stretch of the document (an anchored
*window*), the state of the window, processed once, serves every cursor in it, and a new place
costs only its few suffix tokens (``NEAR_SUFFIX_TOKENS``) and the answer. A window is processed
at a resting cursor (``CodeModel.warm_window``), reaching about as far above the cursor as below
it, and found again by its first lines (``find_window``) as long as they stay unchanged.

``CodeModel`` in ``auto`` order builds a request's prompt both ways and runs the one its backend
answers with fewer new tokens: SPM while the user types at one place (typing only appends to it),
the window prompt at a new place once the window is held (``CodeModel.warm_window``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.budget import fit_prompt, snippet_text
from engine.types import Snippet

__all__ = [
    "NEAR_SUFFIX_TOKENS",
    "WINDOW_CHARS_PER_TOKEN",
    "WINDOWS_PER_DOCUMENT",
    "WINDOW_SAVING",
    "near_suffix",
    "snippet_tokens",
    "WINDOW_KEY_CHARS",
    "find_window",
    "new_window_start",
    "window_key",
    "window_text",
]

# Tokens of the text after the cursor a window prompt shows: the rest of the line and the next
# few lines, what a single-line or short completion mostly depends on (benchmarks/fim_quality.py
# measures what the shorter suffix costs).
NEAR_SUFFIX_TOKENS = 64
# Characters per budget token when sizing a window: code averages 3.5-4 with Qwen's and
# StarCoder's tokenizers, so a window of this many characters a token nearly always fits whole
# (a window cut further by the budget loses its shared head, never correctness).
WINDOW_CHARS_PER_TOKEN = 3
# A window is found again in a later version of its document by its first lines, this many
# characters at least (a longer key finds fewer false matches in repetitive code).
WINDOW_KEY_CHARS = 120
# Windows remembered per document (most recent first); the backend keeps the states.
WINDOWS_PER_DOCUMENT = 4
# The window prompt is chosen in ``auto`` order when the backend would evaluate at least this many
# fewer of its tokens than of the SPM prompt's (SPM keeps the whole budget's suffix).
WINDOW_SAVING = 32


def window_key(text: str) -> str:
    """What finds a window again in a later version of its document: its first lines, at least
    ``WINDOW_KEY_CHARS`` characters (less only when the window is shorter)."""
    end = text.find("\n", WINDOW_KEY_CHARS - 1)
    return text if end < 0 else text[: end + 1]


def find_window(prefix: str, keys: Sequence[str], max_chars: int) -> int | None:
    """Where in ``prefix`` the first window of ``keys`` (``window_key``s, most recent first)
    begins that shows the cursor at least a quarter and at most all of ``max_chars`` characters
    before it (a window that would show less of the text above the cursor is not used, unless it
    begins where the text does); None when none does."""
    for key in keys:
        if len(prefix) <= max_chars and prefix.startswith(key):
            return 0
        found = prefix.rfind(key, max(0, len(prefix) - max_chars), len(prefix) - max_chars // 4 + len(key))
        if found >= 0 and (found == 0 or prefix[found - 1] == "\n"):
            return found
    return None


def new_window_start(prefix: str, max_chars: int) -> int:
    """Where a new window around a cursor at the end of ``prefix`` begins: at the first line start
    from half of ``max_chars`` before the cursor (the window reaches as far below it)."""
    start = max(0, len(prefix) - max_chars // 2)
    if start == 0 or prefix[start - 1] == "\n":
        return start
    line_end = prefix.find("\n", start)
    return len(prefix) if line_end < 0 else line_end + 1


def window_text(document: str, start: int, max_chars: int) -> str:
    """The window of ``document`` from ``start``: ``max_chars`` characters at most, ending at a
    line end (or the document's)."""
    text = document[start : start + max_chars]
    if start + max_chars < len(document):
        text = text[: text.rfind("\n") + 1]
    return text


def near_suffix(
    count_tokens: Callable[[str], int], suffix: str, tokens: int, tokenizer: object = None
) -> str:
    """The head of ``suffix`` in whole lines within ``tokens`` tokens (the cursor's line whole
    unless it alone is longer)."""
    return fit_prompt(
        count_tokens,
        "",
        suffix,
        max_prompt_tokens=tokens,
        suffix_share=1.0,
        snippet_share=0.0,
        tokenizer=tokenizer,
    ).suffix


def snippet_tokens(count_tokens: Callable[[str], int], snippets: Sequence[Snippet]) -> int:
    """Tokens ``snippets`` take in a prompt."""
    return sum(count_tokens(snippet_text(s)) for s in snippets)
