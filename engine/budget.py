"""Token-budgeted prompt building: fit prefix, suffix and snippets into a prompt budget by whole lines.

The line with the cursor is kept whole (unless it alone is over the budget); the prefix keeps the
lines nearest the cursor (its tail), the suffix its head, snippets their first lines in the order
given. The budget is split by shares, and what one part does not use flows to the others.

Tokens are counted the model's way, in one of two ways:

* with the model's fast tokenizer (``tokenizer=``): each part is encoded once, in a window of
  lines around the cursor sized from the tokens it needs (grown by further windows when that was
  not enough), and the cost of every cut between lines is read from the token offsets; recent
  encodings are remembered, so while the user types on one line only that line and the
  assembled prefix are encoded again;
* with a plain ``count_tokens`` callable (a remote backend has no tokenizer): lines are counted in
  blocks (one call per block, line by line only where a part's allowance ends).

Either way each part is read only as far as its allowance reaches, so the work grows with the
budget, not with the size of the file; the assembled texts are then counted exactly as returned
and lines are given back if needed, so the result never exceeds the budget.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import math
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.types import Snippet

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "FittedPrompt",
    "cached_counter",
    "fit_prompt",
    "forget_encodings",
    "reachable_text",
    "snippet_text",
]

CountTokens = Callable[[str], int]
CountAll = Callable[[list[str]], list[int]]

# Lines counted together in one call of a plain counter (the block where the budget ends is
# counted by line).
BLOCK_LINES = 16

# Text further than this many characters per budget token from the cursor is never counted: no
# tokenizer packs that much text into one token on average, so it could not fit anyway.
MAX_CHARS_PER_TOKEN = 32
# Text out of a budget's reach is dropped at a cut that moves in steps of this many characters,
# so that typing extends the kept prefix exactly as it extends the document (``reachable_text``).
REACH_CUT_STEP = 4096
# The cursor's line is priced in steps of this many tokens when the budget is split, so typing on
# it changes the text kept above and below (the start of an SPM prompt) only once per step, and a
# backend's cached prompt state (CTranslate2's static prompt, llama.cpp's KV cache) survives the
# keystrokes in between. Costs at most this many tokens of unused budget.
CURSOR_LINE_STEP = 32

# A tokenizer's first window is sized with this many characters per token (code runs 3 to 4);
# later windows use what the tokenizer has shown, with a margin. Window sizes are rounded up to
# steps of 1/8 octave, so that while the user types on one line the windows of lines around it
# stay the same texts and their remembered encodings are used again.
FIRST_CHARS_PER_TOKEN = 3.0
WINDOW_MARGIN = 1.05
WINDOW_SLACK_CHARS = 80
WINDOW_STEPS_PER_OCTAVE = 8

# Encodings (offsets, counts) remembered per tokenizer, most recent first.
REMEMBERED_ENCODINGS = 64


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


def reachable_text(prefix: str, suffix: str, max_prompt_tokens: int) -> tuple[str, str]:
    """The text around the cursor that a prompt of ``max_prompt_tokens`` tokens can reach.

    ``fit_prompt`` reads no text more than ``max_prompt_tokens * MAX_CHARS_PER_TOKEN`` characters
    from the cursor, so the rest is dropped before the text is used as a cache key or fitted: the
    fitted prompt is the same, and a large document costs no more than a small one. The prefix is
    cut at a line start that stays put while the user types (it moves in steps of
    ``REACH_CUT_STEP`` characters): typing then extends the kept prefix exactly as it extends the
    document, which is what the typed-through cache and the backends' cached prompt heads key on.
    """
    reach = max_prompt_tokens * MAX_CHARS_PER_TOKEN + 1  # ``_lines_before`` looks one character further
    excess = len(prefix) - reach
    if excess > 0:
        cut = excess // REACH_CUT_STEP * REACH_CUT_STEP
        line_start = prefix.find("\n", cut, excess) + 1
        prefix = prefix[line_start or cut :]
    return prefix, suffix[:reach]


def cached_counter(count: CountTokens, maxsize: int = 2048) -> CountTokens:
    """``count`` with an LRU memory of recent texts (thread-safe).

    While the user types on one line, the blocks of lines around it do not change between
    keystrokes, so a fit with a cached counter only counts the cursor's line and the final texts.
    """
    return functools.lru_cache(maxsize=maxsize)(count)


# --------------------------------------------------------------------------- the tokenizer's side


class _Encoder:
    """Counts and offsets from a fast tokenizer (``tokenizers.Tokenizer``), special tokens left out.

    Works on a copy without the post-processor: with no special tokens added, a post-processor only
    trims spaces off the offsets (``ByteLevel(trim_offsets=True)``), and untrimmed offsets give
    every token's true start.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.post_processor = None
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.chars_per_token = FIRST_CHARS_PER_TOKEN
        self.count = functools.lru_cache(maxsize=REMEMBERED_ENCODINGS)(self._count)
        self.starts = functools.lru_cache(maxsize=REMEMBERED_ENCODINGS)(self._starts)

    def clear(self) -> None:
        """Forget the remembered encodings."""
        self.count.cache_clear()
        self.starts.cache_clear()

    def _count(self, text: str) -> int:
        """Tokens in ``text``."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def count_all(self, texts: list[str]) -> list[int]:
        """Tokens in each of ``texts``."""
        return [self.count(text) for text in texts]

    def _starts(self, text: str) -> list[int]:
        """The character where each token of ``text`` starts (non-decreasing; not to be changed)."""
        starts = [start for start, _ in self.tokenizer.encode(text, add_special_tokens=False).offsets]
        if len(text) >= 256 and starts:  # remember how much text a token holds, to size windows
            self.chars_per_token = 0.5 * self.chars_per_token + 0.5 * len(text) / len(starts)
        return starts


_ENCODERS: weakref.WeakKeyDictionary[Any, _Encoder] = weakref.WeakKeyDictionary()
_ENCODERS_LOCK = threading.Lock()


def forget_encodings() -> None:
    """Forget the encodings remembered for every tokenizer (to time cold requests, or free memory)."""
    with _ENCODERS_LOCK:
        encoders = list(_ENCODERS.values())
    for encoder in encoders:
        encoder.clear()


def _encoder(tokenizer: Any) -> _Encoder:
    """The (cached) encoder of a ``tokenizers.Tokenizer`` or of a fast ``transformers`` tokenizer."""
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not isinstance(backend, Tokenizer):
        raise TypeError(
            f"tokenizer must be a tokenizers.Tokenizer or a fast transformers tokenizer, not "
            f"{type(tokenizer).__name__}; pass only count_tokens for other tokenizers"
        )
    with _ENCODERS_LOCK:
        encoder = _ENCODERS.get(backend)
        if encoder is None:
            encoder = _ENCODERS[backend] = _Encoder(backend)
        return encoder


# --------------------------------------------------------------------------- cutting inside a line

# The longest head (or tail) of ``text`` that counts at most ``budget`` tokens.
Longest = Callable[[str, int, bool], str]


def _longest_by_count(count: CountTokens) -> Longest:
    def longest(text: str, budget: int, tail: bool) -> str:
        """Binary search on characters, within the text that could ever fit."""
        cap = max(budget, 1) * MAX_CHARS_PER_TOKEN
        text = text[-cap:] if tail else text[:cap]
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count(text[len(text) - mid :] if tail else text[:mid]) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return text[len(text) - lo :] if tail else text[:lo]

    return longest


def _longest_by_offsets(encoder: _Encoder) -> Longest:
    def longest(text: str, budget: int, tail: bool) -> str:
        """Cut at the token where the budget ends, then check the count (moving in if needed)."""
        cap = max(budget, 1) * MAX_CHARS_PER_TOKEN
        text = text[-cap:] if tail else text[:cap]
        if budget <= 0:
            return ""
        starts = encoder.starts(text)
        if len(starts) <= budget:
            return text
        if tail:
            for j in range(len(starts) - budget, len(starts)):
                if encoder.count(text[starts[j] :]) <= budget:
                    return text[starts[j] :]
            return ""
        for j in range(budget, 0, -1):
            if encoder.count(text[: starts[j]]) <= budget:
                return text[: starts[j]]
        return ""

    return longest


def _fit_cursor_line(
    longest: Longest, count: CountTokens, head: str, tail: str, budget: int, suffix_share: float
) -> FittedPrompt:
    """The cursor line alone is over budget: cut inside it, keeping the text nearest the cursor."""
    cap = budget * MAX_CHARS_PER_TOKEN
    suffix_room = int(budget * suffix_share)
    kept_tail = longest(tail, min(count(tail[:cap]), suffix_room), False)
    kept_head = longest(head, budget - count(kept_tail), True)
    return FittedPrompt(kept_head, kept_tail, [], count(kept_head) + count(kept_tail))


# --------------------------------------------------------------------------- one part of the prompt


def _lines_before(text: str, reach: int) -> tuple[list[str], bool]:
    """The whole lines of ``text`` (which ends a line) within its last ``reach`` characters, nearest
    first, and whether they are all of its lines; only that much of a long text is split."""
    if len(text) <= reach:
        return text.splitlines(keepends=True)[::-1], True
    start = text.find("\n", len(text) - reach - 1) + 1
    return text[start:].splitlines(keepends=True)[::-1], False


def _lines_after(text: str, reach: int) -> tuple[list[str], bool]:
    """The whole lines of ``text`` within its first ``reach`` characters, and whether they are all
    of its lines."""
    if len(text) <= reach:
        return text.splitlines(keepends=True), True
    return text[: text.rfind("\n", 0, reach) + 1].splitlines(keepends=True), False


class _Lines(ABC):
    """Lines taken outward from the cursor (``lines`` is nearest first, only those whose characters
    add up to at most ``char_cap``); ``cost(k)`` is what the ``k`` nearest lines add to the part's
    tokens; ``complete`` says whether ``lines`` are all the part's lines."""

    def __init__(self, lines: tuple[list[str], bool], char_cap: int) -> None:
        available, chars = 0, 0
        for line in lines[0]:
            chars += len(line)
            if chars > char_cap:
                break
            available += 1
        self.lines = lines[0][:available]
        self.complete = lines[1] and available == len(lines[0])
        self.kept = 0
        self.used = 0

    @abstractmethod
    def cost(self, k: int) -> int:
        """Tokens the ``k`` nearest lines add to the part."""

    @abstractmethod
    def fit(self, limit: int) -> int:
        """The most lines ``k`` whose cost is at most ``limit``."""

    def keep(self, allowance: int) -> int:
        """Keep as many lines as fit in ``allowance`` tokens; returns the tokens they cost."""
        self.kept = self.fit(allowance)
        self.used = self.cost(self.kept)
        return self.used

    def drop(self) -> bool:
        """Give back the farthest kept line (when the final exact count overshoots)."""
        if self.kept == 0:
            return False
        self.kept -= 1
        self.used = self.cost(self.kept)
        return True


class _CountedLines(_Lines):
    """Lines counted in blocks of ``BLOCK_LINES`` with a plain counter.

    ``join`` writes a run of lines (nearest first) as the document reads (reversed for the
    prefix). A block is counted as one text, so a file costs one call per block; only in the block
    where the allowance ends are lines counted one by one. Every count is remembered.
    """

    def __init__(
        self,
        count: CountTokens,
        lines: tuple[list[str], bool],
        join: Callable[[list[str]], str],
        char_cap: int,
    ) -> None:
        super().__init__(lines, char_cap)
        self.count = count
        self.join = join
        self._blocks: list[int] = []
        self._line_costs: dict[int, int] = {}

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
        spent, k = 0, 0
        while k + BLOCK_LINES <= len(self.lines) and spent + self._block(k // BLOCK_LINES) <= limit:
            spent += self._block(k // BLOCK_LINES)
            k += BLOCK_LINES
        while k < len(self.lines) and spent + self._line(k) <= limit:
            spent += self._line(k)
            k += 1
        return k


class _EncodedLines(_Lines):
    """Lines priced from token offsets, encoded in windows of lines only as far as needed.

    The first window holds the part's fixed text (``core``: the suffix's piece of the cursor line,
    or a snippet's path line; none for the prefix, whose piece changes with every keystroke) with
    the nearest lines, as the document reads; each further window holds the next lines. In a
    window, the lines from the core out to a line boundary cost the tokens that overlap them, so a
    token spanning the boundary (a newline with the next line's indent) counts once.
    ``_total[k]`` is the estimate for the core and the ``k`` nearest lines.
    """

    def __init__(
        self,
        encoder: _Encoder,
        lines: tuple[list[str], bool],
        core: str,
        *,
        before_core: bool,
        char_cap: int,
        expected: int = 0,
    ) -> None:
        super().__init__(lines, char_cap)
        self.encoder = encoder
        self.core = core
        self.before_core = before_core  # the prefix: lines read before the cursor line
        self.expected = expected  # tokens the first window is sized for when only the core is asked
        self._total: list[int] = []

    def _grow(self, limit: int) -> None:
        """Encode the next window of lines, sized to hold what ``limit`` still needs."""
        first = not self._total
        needed = limit - (self._total[-1] - self._total[0] if self._total else 0) + 1
        want = max(needed, 1) * self.encoder.chars_per_token * WINDOW_MARGIN + WINDOW_SLACK_CHARS
        want = 2 ** (math.ceil(math.log2(want) * WINDOW_STEPS_PER_OCTAVE) / WINDOW_STEPS_PER_OCTAVE)
        begin = end = max(len(self._total) - 1, 0)
        chars = 0
        while end < len(self.lines) and chars < want:
            chars += len(self.lines[end])
            end += 1
        window = self.lines[begin:end]
        core = self.core if first else ""
        base = 0 if first else self._total[-1]
        if self.before_core:
            text = "".join(reversed(window)) + core
            starts = self.encoder.starts(text)
            n = len(starts)

            def tokens_from(position: int) -> int:  # tokens overlapping text[position:]
                if position >= len(text):
                    return 0
                return n - max(bisect.bisect_right(starts, position) - 1, 0)

            if first:
                self._total.append(tokens_from(len(text) - len(core)))
            position = len(text) - len(core)
            for line in window:
                position -= len(line)
                self._total.append(base + tokens_from(position))
        else:
            text = core + "".join(window)
            starts = self.encoder.starts(text)
            if first:
                self._total.append(bisect.bisect_left(starts, len(core)) if core else 0)
            position = len(core)
            for line in window:
                position += len(line)  # tokens overlapping text[:position]
                self._total.append(base + bisect.bisect_left(starts, position))

    @property
    def core_tokens(self) -> int:
        """Tokens of the core alone, as priced in the first window."""
        if not self._total:
            self._grow(self.expected)
        return self._total[0]

    def cost(self, k: int) -> int:
        while len(self._total) <= k:
            self._grow(0)
        return self._total[k] - self._total[0]

    def fit(self, limit: int) -> int:
        if not self._total:
            self._grow(limit)
        while len(self._total) <= len(self.lines) and self._total[-1] - self._total[0] <= limit:
            self._grow(limit)
        return max(bisect.bisect_right(self._total, self._total[0] + limit) - 1, 0)


# (tokens of a snippet's path line, its lines)
PartOf = Callable[[Snippet], tuple[int, _Lines]]


class _Snippets:
    """Snippets taken in order; the last one taken may be cut to its first lines."""

    def __init__(self, snippets: Sequence[Snippet], part_of: PartOf) -> None:
        self.snippets = list(snippets)
        self.part_of = part_of  # (tokens of the snippet's path line, its lines)
        self.kept: list[Snippet] = []
        self.used = 0
        self._parts: dict[int, tuple[int, _Lines]] = {}

    def _part(self, index: int) -> tuple[int, _Lines]:
        if index not in self._parts:
            self._parts[index] = self.part_of(self.snippets[index])
        return self._parts[index]

    def keep(self, allowance: int) -> int:
        """Take snippets while they fit in ``allowance`` tokens in all; returns the tokens used."""
        self.kept, self.used = [], 0
        for index, snippet in enumerate(self.snippets):
            header, part = self._part(index)
            spent = part.keep(allowance - self.used - header)
            if part.kept == 0:
                break  # a header alone is no context
            whole = part.complete and part.kept == len(part.lines)
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


def _in_order(lines: list[str]) -> str:
    return "".join(lines)


def _reversed(lines: list[str]) -> str:
    return "".join(reversed(lines))


def _counted_parts(
    count: CountTokens, above: str, below: str, char_cap: int
) -> tuple[_Lines, _Lines, PartOf]:
    """The prefix's lines, the suffix's lines and the snippets' parts, counted in blocks."""

    def snippet_part(snippet: Snippet) -> tuple[int, _Lines]:
        lines = _lines_after(snippet.text, char_cap)
        return count(f"{snippet.path}\n"), _CountedLines(count, lines, _in_order, char_cap)

    return (
        _CountedLines(count, _lines_before(above, char_cap), _reversed, char_cap),
        _CountedLines(count, _lines_after(below, char_cap), _in_order, char_cap),
        snippet_part,
    )


def _encoded_parts(
    encoder: _Encoder,
    above: str,
    tail: str,
    below: str,
    char_cap: int,
    snippet_tokens: int,
) -> tuple[_Lines, _Lines, PartOf]:
    """The prefix's lines, the suffix's lines and the snippets' parts, priced from offsets."""

    def snippet_part(snippet: Snippet) -> tuple[int, _Lines]:
        lines = _lines_after(snippet.text, char_cap)
        header = f"{snippet.path}\n"
        part = _EncodedLines(
            encoder, lines, header, before_core=False, char_cap=char_cap, expected=snippet_tokens
        )
        return part.core_tokens, part

    return (
        # Without the cursor's line, which changes with every keystroke: the windows above it stay.
        _EncodedLines(encoder, _lines_before(above, char_cap), "", before_core=True, char_cap=char_cap),
        _EncodedLines(encoder, _lines_after(below, char_cap), tail, before_core=False, char_cap=char_cap),
        snippet_part,
    )


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
    tokenizer: Any = None,
) -> FittedPrompt:
    """Fit the text around the cursor and extra snippets into ``max_prompt_tokens`` tokens.

    Args:
        count_tokens: counts tokens the way the model's tokenizer does (no special tokens added);
            without ``tokenizer`` it is called a few dozen times, so a direct
            ``tokenizers.Tokenizer.encode`` is faster than the ``transformers`` wrapper.
        prefix, suffix: the document before and after the cursor.
        snippets: extra context, most useful first; the last one kept may be cut to its first lines.
        max_prompt_tokens: the budget for these texts (leave room for the format's own tokens).
        suffix_share, snippet_share: parts of the budget reserved for the suffix and the snippets;
            the prefix gets the rest, and any share a part does not use goes to the others.
        tokenizer: the model's fast tokenizer (a ``tokenizers.Tokenizer`` or a fast ``transformers``
            tokenizer), counting as ``count_tokens`` does; when given, it does all the counting
            (each part encoded about once, cuts priced from token offsets) and ``count_tokens`` is
            not called.

    Returns:
        The kept prefix (a tail of whole lines), suffix (a head of whole lines) and snippets, with
        ``prompt_tokens`` = count(prefix) + count(suffix) + the count of each ``snippet_text``.
    """
    if max_prompt_tokens < 1:
        raise ValueError("max_prompt_tokens must be at least 1")
    if not (0 <= suffix_share <= 1 and 0 <= snippet_share <= 1 and suffix_share + snippet_share <= 1):
        raise ValueError("suffix_share and snippet_share must be between 0 and 1 and sum to at most 1")

    encoder = _encoder(tokenizer) if tokenizer is not None else None
    if encoder is not None:
        count, count_all, longest = encoder.count, encoder.count_all, _longest_by_offsets(encoder)
    else:
        count, longest = count_tokens, _longest_by_count(count_tokens)

        def count_all(texts: list[str]) -> list[int]:
            return [count_tokens(text) for text in texts]

    cut = prefix.rfind("\n") + 1
    head, above = prefix[cut:], prefix[:cut]
    cut = suffix.find("\n") + 1 or len(suffix)
    tail, below = suffix[:cut], suffix[cut:]

    # A cursor line longer than any budget-sized text could be is over budget without counting.
    if len(head) + len(tail) > max_prompt_tokens * MAX_CHARS_PER_TOKEN:
        return _fit_cursor_line(longest, count, head, tail, max_prompt_tokens, suffix_share)
    line_tokens = sum(count_all([head, tail]))
    if line_tokens > max_prompt_tokens:
        return _fit_cursor_line(longest, count, head, tail, max_prompt_tokens, suffix_share)
    stepped = -(-line_tokens // CURSOR_LINE_STEP) * CURSOR_LINE_STEP
    remaining = max(0, max_prompt_tokens - stepped)

    char_cap = max(remaining, 1) * MAX_CHARS_PER_TOKEN
    suffix_tokens, snippet_tokens = int(remaining * suffix_share), int(remaining * snippet_share)
    if encoder is not None:
        prefix_part, suffix_part, part_of = _encoded_parts(
            encoder, above, tail, below, char_cap, snippet_tokens
        )
    else:
        prefix_part, suffix_part, part_of = _counted_parts(count_tokens, above, below, char_cap)
    snippet_part = _Snippets(snippets, part_of)
    parts = (prefix_part, suffix_part, snippet_part)  # priority order for leftovers

    shares = [remaining - suffix_tokens - snippet_tokens, suffix_tokens, snippet_tokens]
    if not snippets:  # the snippets' share will flow to the prefix: read that far at once
        shares = [shares[0] + shares[2], shares[1], 0]
    for part, share in zip(parts, shares, strict=True):
        part.keep(share)  # reads only as far as the share reaches
    # What a part leaves unused (it is short, or whole lines did not fill its share) flows to the
    # others in priority order.
    for part in parts:
        leftover = remaining - sum(p.used for p in parts)
        if leftover > 0:
            part.keep(part.used + leftover)

    # Lines were priced apart from the cursor line or in windows; count the assembled texts as the
    # model will see them, and give back lines in the rare case that they cost more.
    while True:
        kept_prefix = "".join(reversed(prefix_part.lines[: prefix_part.kept])) + head
        kept_suffix = tail + "".join(suffix_part.lines[: suffix_part.kept])
        kept_snippets = list(snippet_part.kept)
        total = sum(count_all([kept_prefix, kept_suffix, *map(snippet_text, kept_snippets)]))
        if total <= max_prompt_tokens:
            return FittedPrompt(kept_prefix, kept_suffix, kept_snippets, total)
        if not any(part.drop() for part in (snippet_part, suffix_part, prefix_part)):
            return _fit_cursor_line(longest, count, head, tail, max_prompt_tokens, suffix_share)
