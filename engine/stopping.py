"""Stop strings applied to a stream of text pieces.

A stop string may arrive split across pieces, so the tail of the text that could still grow into a
stop string is held back until the next piece settles it; the stop string itself is never emitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class StopMatcher:
    """Feed text pieces with ``push``; it returns the text safe to show and whether a stop matched."""

    def __init__(self, stops: Iterable[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._buffer = ""
        self.stopped = False

    def _held_back(self, text: str) -> int:
        """Length of the longest tail of ``text`` that is a proper prefix of a stop string."""
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def push(self, piece: str) -> str:
        """Add ``piece``; return the text that can be emitted now (empty once stopped)."""
        if self.stopped:
            return ""
        text = self._buffer + piece
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._buffer = ""
            return text[:cut]
        keep = self._held_back(text)
        self._buffer = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """Text held back when the stream ended without completing a stop string."""
        text, self._buffer = ("" if self.stopped else self._buffer), ""
        return text


def apply_stops(pieces: Iterable[str], stops: Iterable[str]) -> Iterator[str]:
    """Yield ``pieces`` up to (not including) the first stop string; stop consuming there."""
    matcher = StopMatcher(stops)
    if not matcher.stops:
        yield from pieces
        return
    for piece in pieces:
        out = matcher.push(piece)
        if out:
            yield out
        if matcher.stopped:
            return
    tail = matcher.flush()
    if tail:
        yield tail
