"""Draft tokens for speculative decoding, looked up in the tokens the model already sees.

Code repeats itself: a name, a call or a whole line the model is about to write is often
somewhere in the prompt (the document around the cursor, the workspace context) or in what it
has just written. Prompt-lookup decoding proposes, after the last few tokens, what followed
their latest earlier occurrence; the model then checks the whole draft in one pass and keeps the
part it would have produced itself, so the text is the model's own greedy output either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["DRAFT_LENGTHS", "best_draft_length", "lookup_draft"]

LONGEST_NGRAM = 3  # the match tried first: the last 3 tokens
SHORTEST_NGRAM = 2  # one token repeats too often to predict what follows it

DRAFT_LENGTHS = (2, 4, 8)  # the draft lengths a runtime is measured for
# How often a looked-up token is the model's own next choice, given the ones before it were:
# about 0.7 for the 1.5B completing line starts of a real file (benchmarks/speculative.py).
ACCEPTANCE = 0.7
MIN_GAIN = 1.1  # drafting must promise this many times plain decoding's speed, measurement noise aside


def lookup_draft(
    history: Sequence[int] | np.ndarray,
    limit: int,
    *,
    longest: int = LONGEST_NGRAM,
    shortest: int = SHORTEST_NGRAM,
) -> list[int]:
    """Up to ``limit`` tokens that followed the latest earlier occurrence of ``history``'s last
    n tokens, trying n from ``longest`` down to ``shortest``; empty when none occurs."""
    if limit < 1:
        return []
    tokens = np.asarray(history, dtype=np.int64)
    for n in range(longest, shortest - 1, -1):
        if len(tokens) <= n:
            continue
        tail = tokens[-n:]
        # starts i of an earlier occurrence with at least one token after it: i + n < len
        starts = np.flatnonzero(tokens[: len(tokens) - n] == tail[0])
        for offset in range(1, n):
            if not starts.size:
                break
            starts = starts[tokens[starts + offset] == tail[offset]]
        if starts.size:
            begin = int(starts[-1]) + n
            return tokens[begin : begin + limit].tolist()
    return []


def expected_tokens(draft_length: int, acceptance: float = ACCEPTANCE) -> float:
    """Tokens one pass yields on average with a draft of ``draft_length``: the model's own token
    plus each drafted one kept while all before it were (1 + p + … + p^k)."""
    return sum(acceptance**i for i in range(draft_length + 1))


def best_draft_length(pass_seconds: Mapping[int, float], acceptance: float = ACCEPTANCE) -> int:
    """The draft length that decodes fastest on this runtime, from the measured seconds of one
    pass over n tokens (n = 1: a plain step; n = k + 1: a draft of k); 0, plain decoding, unless
    some length promises at least ``MIN_GAIN`` times its speed."""
    step = pass_seconds[1]
    best, best_gain = 0, MIN_GAIN
    for n, seconds in sorted(pass_seconds.items()):
        if n < 2:
            continue
        gain = expected_tokens(n - 1, acceptance) * step / seconds
        if gain >= best_gain:
            best, best_gain = n - 1, gain
    return best
