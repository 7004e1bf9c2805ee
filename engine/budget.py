"""Token-budgeted prompt building: fit prefix, suffix and snippets into a prompt budget by whole lines.

The line with the cursor is kept whole (unless it alone is over the budget); the prefix keeps the
lines nearest the cursor (its tail), the suffix its head, snippets their first lines in the order
given. The budget is split by shares, and what one part does not use flows to the others.

Tokens are counted with the model's own tokenizer. Lines are counted in blocks (one tokenizer call
per block, line by line only where a part's allowance ends), each part only as far as its
allowance reaches, so the work grows with the budget, not with the size of the file; the assembled
texts are then counted exactly as returned, so the result never exceeds the budget.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.types import Snippet

__all__ = ["FittedPrompt", "cached_counter", "fit_prompt", "snippet_text"]

CountTokens = Callable[[str], int]

# Lines counted together in one tokenizer call (the block where the budget ends is counted by line).
BLOCK_LINES = 16

# Lines further than this many characters per budget token from the cursor are never counted:
# no tokenizer packs that much text into one token on average, so they could not fit anyway.
MAX_CHARS_PER_TOKEN = 32


@dataclass
class FittedPrompt:
    """The parts of a prompt after fitting; ``prompt_tokens`` counts them as the model would."""

    prefix: str
    suffix: str
    snippets: list[Snippet] = field(default_factory=list)
    prompt_tokens: int = 0


def snippet_text(snippet: Snippet) -> str:
    """The text a snippet is counted as: its path line, then its code."""
    return f"{snippet.path}\n{snippet.text}"


def cached_counter(count: CountTokens, maxsize: int = 2048) -> CountTokens:
    """``count`` with an LRU memory of recent texts (thread-safe).

    While the user types on one line, the blocks of lines around it do not change between
    keystrokes, so a fit with a cached counter only counts the cursor's line and the final texts.
    """
    return functools.lru_cache(maxsize=maxsize)(count)


# --------------------------------------------------------------------------- cutting inside a line


def _longest(count: CountTokens, text: str, budget: int, *, tail: bool) -> str:
    """The longest head (or tail) of ``text``, by characters, that counts at most ``budget`` tokens."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[len(text) - mid :] if tail else text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[len(text) - lo :] if tail else text[:lo]


def _fit_cursor_line(
    count: CountTokens, head: str, tail: str, budget: int, suffix_share: float
) -> FittedPrompt:
    """The cursor line alone is over budget: cut inside it, keeping the text nearest the cursor."""
    kept_tail = _longest(count, tail, min(count(tail), int(budget * suffix_share)), tail=False)
    kept_head = _longest(count, head, budget - count(kept_tail), tail=True)
    return FittedPrompt(kept_head, kept_tail, [], count(kept_head) + count(kept_tail))


# --------------------------------------------------------------------------- one part of the prompt


class _Lines:
    """Lines taken outward from the cursor, counted in blocks of ``BLOCK_LINES`` lines.

    ``lines`` is nearest first; ``join`` writes a run of them (nearest first) as the document reads
    (reversed for the prefix). A block is counted as one text, so a file costs one tokenizer call
    per block; only in the block where the allowance ends are lines counted one by one. Every
    count is remembered, so taking more lines later re-counts nothing.
    """

    def __init__(
        self, count: CountTokens, lines: list[str], join: Callable[[list[str]], str], char_cap: int
    ) -> None:
        self.count = count
        self.join = join
        chars, available = 0, 0
        for line in lines:
            chars += len(line)
            if chars > char_cap:
                break
            available += 1
        self.lines = lines[:available]
        self._blocks: list[int] = []
        self._line_costs: dict[int, int] = {}
        self.kept = 0
        self.used = 0

    def _block(self, b: int) -> int:
        while len(self._blocks) <= b:
            i = len(self._blocks) * BLOCK_LINES
            self._blocks.append(self.count(self.join(self.lines[i : i + BLOCK_LINES])))
        return self._blocks[b]

    def _line(self, i: int) -> int:
        if i not in self._line_costs:
            self._line_costs[i] = self.count(self.lines[i])
        return self._line_costs[i]

    def cost(self, k: int) -> int:
        """Tokens of the ``k`` nearest lines: whole blocks, then the rest line by line."""
        full = k // BLOCK_LINES
        return sum(self._block(b) for b in range(full)) + sum(
            self._line(i) for i in range(full * BLOCK_LINES, k)
        )

    def fit(self, limit: int) -> int:
        """The most lines ``k`` whose cost is at most ``limit``."""
        spent, k = 0, 0
        while k + BLOCK_LINES <= len(self.lines) and spent + self._block(k // BLOCK_LINES) <= limit:
            spent += self._block(k // BLOCK_LINES)
            k += BLOCK_LINES
        while k < len(self.lines) and spent + self._line(k) <= limit:
            spent += self._line(k)
            k += 1
        return k

    def keep(self, allowance: int) -> int:
        """Keep as many lines as fit in ``allowance`` tokens; returns the tokens they cost."""
        self.kept = self.fit(allowance)
        self.used = self.cost(self.kept)
        return self.used

    def drop(self) -> bool:
        """Give back the farthest kept line (when the final joint count overshoots)."""
        if self.kept == 0:
            return False
        self.kept -= 1
        self.used = self.cost(self.kept)
        return True


def _in_order(lines: list[str]) -> str:
    return "".join(lines)


def _reversed(lines: list[str]) -> str:
    return "".join(reversed(lines))


class _Snippets:
    """Snippets taken in order; the last one taken may be cut to its first lines."""

    def __init__(self, count: CountTokens, snippets: Sequence[Snippet], char_cap: int) -> None:
        self.count = count
        self.snippets = list(snippets)
        self.char_cap = char_cap
        self.kept: list[Snippet] = []
        self.used = 0
        self._parts: dict[int, tuple[int, _Lines]] = {}

    def _part(self, index: int) -> tuple[int, _Lines]:
        """(tokens of the snippet's header, its lines)."""
        if index not in self._parts:
            snippet = self.snippets[index]
            lines = snippet.text.splitlines(keepends=True)
            header = self.count(f"{snippet.path}\n")
            self._parts[index] = header, _Lines(self.count, lines, _in_order, self.char_cap)
        return self._parts[index]

    def keep(self, allowance: int) -> int:
        """Take snippets while they fit in ``allowance`` tokens in all; returns the tokens used."""
        self.kept, self.used = [], 0
        for index, snippet in enumerate(self.snippets):
            header, part = self._part(index)
            spent = part.keep(allowance - self.used - header)
            if part.kept == 0:
                break  # a header alone is no context
            whole = part.kept == len(snippet.text.splitlines(keepends=True))
            text = snippet.text if whole else "".join(part.lines[: part.kept])
            self.kept.append(dataclasses.replace(snippet, text=text))
            self.used += header + spent
            if not whole:
                break
        return self.used

    def drop(self) -> bool:
        """Give back the last line of the last kept snippet."""
        if not self.kept:
            return False
        index = len(self.kept) - 1
        header, part = self._part(index)
        if not part.drop() or part.kept == 0:
            self.kept.pop()
        else:
            self.kept[-1] = dataclasses.replace(self.kept[-1], text="".join(part.lines[: part.kept]))
        return True


# --------------------------------------------------------------------------- fitting


def fit_prompt(
    count_tokens: CountTokens,
    prefix: str,
    suffix: str,
    snippets: Sequence[Snippet] = (),
    *,
    max_prompt_tokens: int = 1536,
    suffix_share: float = 0.25,
    snippet_share: float = 0.25,
) -> FittedPrompt:
    """Fit the text around the cursor and extra snippets into ``max_prompt_tokens`` tokens.

    Args:
        count_tokens: counts tokens the way the model's tokenizer does (no special tokens added);
            it is called a few dozen times, so a direct ``tokenizers.Tokenizer.encode`` is faster
            than the ``transformers`` wrapper.
        prefix, suffix: the document before and after the cursor.
        snippets: extra context, most useful first; the last one kept may be cut to its first lines.
        max_prompt_tokens: the budget for these texts (leave room for the format's own tokens).
        suffix_share, snippet_share: parts of the budget reserved for the suffix and the snippets;
            the prefix gets the rest, and any share a part does not use goes to the others.

    Returns:
        The kept prefix (a tail of whole lines), suffix (a head of whole lines) and snippets, with
        ``prompt_tokens`` = count(prefix) + count(suffix) + the count of each ``snippet_text``.
    """
    if max_prompt_tokens < 1:
        raise ValueError("max_prompt_tokens must be at least 1")
    if not (0 <= suffix_share <= 1 and 0 <= snippet_share <= 1 and suffix_share + snippet_share <= 1):
        raise ValueError("suffix_share and snippet_share must be between 0 and 1 and sum to at most 1")

    cut = prefix.rfind("\n") + 1
    head, above = prefix[cut:], prefix[:cut].splitlines(keepends=True)
    cut = suffix.find("\n") + 1 or len(suffix)
    tail, below = suffix[:cut], suffix[cut:].splitlines(keepends=True)

    remaining = max_prompt_tokens - count_tokens(head) - count_tokens(tail)
    if remaining < 0:
        return _fit_cursor_line(count_tokens, head, tail, max_prompt_tokens, suffix_share)

    char_cap = max(remaining, 1) * MAX_CHARS_PER_TOKEN
    prefix_part = _Lines(count_tokens, above[::-1], _reversed, char_cap)
    suffix_part = _Lines(count_tokens, below, _in_order, char_cap)
    snippet_part = _Snippets(count_tokens, snippets, char_cap)
    parts = (prefix_part, suffix_part, snippet_part)  # priority order for leftovers

    suffix_tokens, snippet_tokens = int(remaining * suffix_share), int(remaining * snippet_share)
    shares = [remaining - suffix_tokens - snippet_tokens, suffix_tokens, snippet_tokens]
    for part, share in zip(parts, shares, strict=True):
        part.keep(share)  # counts only as far as the share reaches
    # What a part leaves unused (it is short, or whole lines did not fill its share) flows to the
    # others in priority order.
    for part in parts:
        leftover = remaining - sum(p.used for p in parts)
        if leftover > 0:
            part.keep(part.used + leftover)

    # Blocks were counted apart; count the assembled texts as the model will see them, and give
    # back lines in the rare case that joining them costs more.
    while True:
        kept_prefix = "".join(reversed(prefix_part.lines[: prefix_part.kept])) + head
        kept_suffix = tail + "".join(suffix_part.lines[: suffix_part.kept])
        kept_snippets = list(snippet_part.kept)
        total = (
            count_tokens(kept_prefix)
            + count_tokens(kept_suffix)
            + sum(count_tokens(snippet_text(s)) for s in kept_snippets)
        )
        if total <= max_prompt_tokens:
            return FittedPrompt(kept_prefix, kept_suffix, kept_snippets, total)
        if not any(part.drop() for part in (snippet_part, suffix_part, prefix_part)):
            return _fit_cursor_line(count_tokens, head, tail, max_prompt_tokens, suffix_share)
