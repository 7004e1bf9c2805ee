"""Prompt-lookup drafts: what followed the latest earlier occurrence of the last tokens."""

from __future__ import annotations

from engine.drafts import lookup_draft


def test_the_draft_is_what_followed_the_last_tokens_earlier() -> None:
    history = [5, 6, 7, 8, 9, 10, 1, 2, 5, 6, 7]
    assert lookup_draft(history, 3) == [8, 9, 10]
    assert lookup_draft(history, 10) == [8, 9, 10, 1, 2, 5, 6, 7]


def test_the_latest_occurrence_wins() -> None:
    history = [1, 2, 3, 40, 0, 1, 2, 3, 50, 0, 1, 2, 3]
    assert lookup_draft(history, 2) == [50, 0]


def test_a_longer_match_is_preferred_to_a_later_shorter_one() -> None:
    # the last three tokens (7, 1, 2) occur once; the last two (1, 2) also occur later
    history = [7, 1, 2, 30, 9, 1, 2, 40, 7, 1, 2]
    assert lookup_draft(history, 1) == [30]
    assert lookup_draft(history, 1, longest=2) == [40]


def test_no_draft_without_an_earlier_occurrence_or_room() -> None:
    assert lookup_draft([1, 2, 3, 4, 5], 4) == []
    assert lookup_draft([1, 2], 4) == []
    assert lookup_draft([1, 2, 9, 1, 2], 0) == []
    # a single repeated token is not enough to predict what follows it
    assert lookup_draft([3, 8, 1, 3], 2) == []


def test_the_match_itself_at_the_end_is_not_an_earlier_occurrence() -> None:
    assert lookup_draft([4, 4, 4], 2) == [4]


def test_drafting_is_chosen_only_where_a_pass_over_several_tokens_is_cheap() -> None:
    from engine.drafts import best_draft_length, expected_tokens

    assert expected_tokens(0) == 1
    assert expected_tokens(2, 0.5) == 1.75
    # two AVX2 cores, measured: a pass costs nearly one step per token, so plain decoding wins
    avx2 = {1: 0.052, 3: 0.132, 5: 0.199, 9: 0.369}
    assert best_draft_length(avx2) == 0
    # a runtime where small batches cost little more than one step: the longer draft pays
    wide = {1: 0.040, 3: 0.048, 5: 0.056, 9: 0.090}
    assert best_draft_length(wide) == 4
    # with drafts that are nearly always right, even longer ones pay there
    assert best_draft_length(wide, acceptance=0.99) == 8
