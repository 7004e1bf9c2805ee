"""Stop strings on a text stream."""

from __future__ import annotations

from engine.stopping import StopMatcher, apply_stops


def test_stop_split_across_pieces_is_not_emitted() -> None:
    assert "".join(apply_stops(["ab", "c<fi", "m_pad>tail"], ["<fim_pad>"])) == "abc"


def test_partial_match_released_when_it_does_not_complete() -> None:
    pieces = list(apply_stops(["x = <f", "oo>", " + 1"], ["<fim_pad>"]))
    assert "".join(pieces) == "x = <foo> + 1"
    assert pieces[0] == "x = "  # "<f" held back until the next piece settles it


def test_earliest_of_several_stops_wins() -> None:
    assert "".join(apply_stops(["a\n\nb<|endoftext|>"], ["<|endoftext|>", "\n\n"])) == "a"


def test_stops_consuming_upstream() -> None:
    consumed = []

    def pieces():
        for piece in ["one", "STOP", "two", "three"]:
            consumed.append(piece)
            yield piece

    assert "".join(apply_stops(pieces(), ["STOP"])) == "one"
    assert consumed == ["one", "STOP"]


def test_no_stops_passes_through_and_flush() -> None:
    assert list(apply_stops(["a", "b"], [])) == ["a", "b"]
    matcher = StopMatcher(["END"])
    assert matcher.push("abcE") == "abc"
    assert matcher.flush() == "E"
