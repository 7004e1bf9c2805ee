"""LSP positions (UTF-16 code units) <-> string offsets, with clamping."""

from __future__ import annotations

from lsprotocol.types import Position

from lsp_server.documents import CodeUnits, Cursor, codec_for, offset_at, position_at


def pos(line: int, character: int) -> Position:
    return Position(line=line, character=character)


def test_utf16_counts_astral_characters_twice() -> None:
    text = 'x = "😋é"\nnext\n'
    # the closing quote: 7 code points before it, 8 UTF-16 units, 11 UTF-8 bytes
    assert offset_at(text, pos(0, 8)) == text.index('"', 5)
    assert offset_at(text, pos(0, 9), CodeUnits("utf-8")) == text.index("é")
    assert offset_at(text, pos(0, 11), CodeUnits("utf-8")) == text.index('"', 5)
    assert offset_at(text, pos(0, 7), CodeUnits("utf-32")) == text.index('"', 5)
    assert position_at(text, text.index('"', 5)) == pos(0, 8)
    assert position_at(text, text.index('"', 5), CodeUnits("utf-8")) == pos(0, 11)
    assert position_at(text, text.index("n")) == pos(1, 0)


def test_round_trip_every_offset_of_non_ascii_text() -> None:
    text = "αβ😋\r\n\tdef f():  # ünïcødé 🎉\n    return '🐍'\n"
    for units in (CodeUnits("utf-16"), CodeUnits("utf-8"), CodeUnits("utf-32")):
        for offset in range(len(text) + 1):
            if text[offset - 1 : offset + 1] == "\r\n":
                continue  # between \r and \n is not a position
            assert offset_at(text, position_at(text, offset, units), units) == offset


def test_positions_past_the_end_are_clamped() -> None:
    text = "ab\ncd"
    assert offset_at(text, pos(0, 99)) == 2
    assert offset_at(text, pos(1, 99)) == 5
    assert offset_at(text, pos(7, 3)) == 5
    assert offset_at("", pos(3, 3)) == 0
    cursor = Cursor.at(text, pos(0, 50))
    assert (cursor.prefix, cursor.suffix, cursor.position) == ("ab", "\ncd", pos(0, 2))


def test_crlf_line_end_is_not_inside_the_line() -> None:
    assert offset_at("ab\r\ncd", pos(0, 9)) == 2


def test_codec_for_unknown_encoding_is_utf16() -> None:
    assert (
        codec_for(None).name == "utf-16"
        and codec_for("utf-8").name == "utf-8"
        and codec_for("x").name == "utf-16"
    )


def test_large_document_positions_are_fast() -> None:
    import time

    text = ("x = 1  # é\n" * 1_000_000)[:10_000_000]
    t = time.perf_counter()
    off = offset_at(text, pos(900_000, 5))
    assert position_at(text, off) == pos(900_000, 5)
    assert time.perf_counter() - t < 2.0
