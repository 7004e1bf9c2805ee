"""The completion cache: an LRU of completions keyed on the text around the cursor.

Besides exact hits it serves "typed-through" hits: when the user types characters that match the
suggestion on screen, the document's prefix grows by those characters while the suffix stays the
same, and the rest of the cached suggestion is returned without running the model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["CompletionCache"]


class CompletionCache:
    """Thread-safe LRU of completions on (prefix, suffix), with typed-through lookups."""

    def __init__(self, maxsize: int = 256) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._by_suffix: dict[str, set[str]] = {}  # suffix -> prefixes cached with it
        self._lock = threading.Lock()
        self.hits = 0
        self.typed_hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, prefix: str, suffix: str) -> str | None:
        """The completion for this cursor context, or None.

        An exact entry is returned as stored. Otherwise an entry with the same suffix whose prefix
        the current prefix extends by ``typed`` characters, and whose text starts with ``typed``,
        yields the rest of its text (the longest such cached prefix wins; an empty rest is a miss).
        """
        with self._lock:
            key = (prefix, suffix)
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
            best: str | None = None
            for cached_prefix in self._by_suffix.get(suffix, ()):
                if len(cached_prefix) < len(prefix) and prefix.startswith(cached_prefix):
                    typed = prefix[len(cached_prefix) :]
                    text = self._entries[(cached_prefix, suffix)]
                    if (
                        len(text) > len(typed)
                        and text.startswith(typed)
                        and (best is None or len(cached_prefix) > len(best))
                    ):
                        best = cached_prefix
            if best is None:
                self.misses += 1
                return None
            self._entries.move_to_end((best, suffix))
            self.typed_hits += 1
            return self._entries[(best, suffix)][len(prefix) - len(best) :]

    def put(self, prefix: str, suffix: str, text: str) -> None:
        """Store the completion shown for this cursor context, evicting the least recently used."""
        with self._lock:
            key = (prefix, suffix)
            self._entries[key] = text
            self._entries.move_to_end(key)
            self._by_suffix.setdefault(suffix, set()).add(prefix)
            while len(self._entries) > self.maxsize:
                (old_prefix, old_suffix), _ = self._entries.popitem(last=False)
                prefixes = self._by_suffix[old_suffix]
                prefixes.discard(old_prefix)
                if not prefixes:
                    del self._by_suffix[old_suffix]

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._by_suffix.clear()
