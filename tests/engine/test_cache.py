"""The completion cache: LRU on (prefix, suffix) and typed-through hits."""

from __future__ import annotations

import threading

import pytest

from engine.cache import CompletionCache


def test_exact_hit_and_miss() -> None:
    cache = CompletionCache()
    cache.put("def f(", "\n", "x, y):")
    assert cache.get("def f(", "\n") == "x, y):"
    assert cache.get("def g(", "\n") is None
    assert cache.get("def f(", "") is None  # a different suffix is a different context


def test_typed_through_returns_the_rest() -> None:
    cache = CompletionCache()
    cache.put("x = ", "\n", "compute(a, b)")
    assert cache.get("x = com", "\n") == "pute(a, b)"
    assert cache.get("x = compute(a, b", "\n") == ")"


def test_typing_something_else_is_a_miss() -> None:
    cache = CompletionCache()
    cache.put("x = ", "\n", "compute(a, b)")
    assert cache.get("x = cal", "\n") is None


def test_typing_the_whole_suggestion_is_a_miss() -> None:
    cache = CompletionCache()
    cache.put("x = ", "\n", "1")
    assert cache.get("x = 1", "\n") is None


def test_longest_cached_prefix_wins() -> None:
    cache = CompletionCache()
    cache.put("a", "", "bcdef")
    cache.put("abc", "", "dXYZ")
    assert cache.get("abcd", "") == "XYZ"


def test_empty_completion_is_remembered_exactly() -> None:
    cache = CompletionCache()
    cache.put("x", "", "")
    assert cache.get("x", "") == ""
    assert cache.get("xy", "") is None


def test_least_recently_used_is_evicted() -> None:
    cache = CompletionCache(maxsize=2)
    cache.put("a", "", "1")
    cache.put("b", "", "2")
    assert cache.get("a", "") == "1"  # "a" is now the most recent
    cache.put("c", "", "3")
    assert cache.get("b", "") is None
    assert cache.get("a", "") == "1" and cache.get("c", "") == "3"
    assert len(cache) == 2
    # An evicted entry no longer serves typed-through hits either.
    cache.put("d", "", "4")
    assert cache.get("ab", "") is None


def test_counters() -> None:
    cache = CompletionCache()
    cache.put("p", "s", "text")
    cache.get("p", "s")
    cache.get("pt", "s")
    cache.get("q", "s")
    assert (cache.hits, cache.typed_hits, cache.misses) == (1, 1, 1)


def test_rejects_a_zero_size() -> None:
    with pytest.raises(ValueError):
        CompletionCache(maxsize=0)


def test_concurrent_use() -> None:
    cache = CompletionCache(maxsize=64)

    def work(n: int) -> None:
        for i in range(500):
            cache.put(f"{n}-{i}", "", "abc")
            cache.get(f"{n}-{i}a", "")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 64
