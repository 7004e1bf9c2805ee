"""Provenance findings follow the document's edits (shifted, or dropped when their code is edited)."""

from __future__ import annotations

from lsprotocol import types

from lsp_server.provenance import Finding, shift_findings


def rng(a: int, b: int, c: int, d: int) -> types.Range:
    return types.Range(start=types.Position(line=a, character=b), end=types.Position(line=c, character=d))


def change(r: types.Range | None, text: str):
    if r is None:
        return types.TextDocumentContentChangeWholeDocument(text=text)
    return types.TextDocumentContentChangePartial(range=r, text=text)


FINDING = Finding(rng(5, 0, 7, 10), {"repo": "r", "path": "p"}, "src")


def ranges(findings: list[Finding]) -> list[types.Range]:
    return [f.range for f in findings]


def test_lines_inserted_above_move_the_finding_down() -> None:
    moved = shift_findings([FINDING], [change(rng(1, 0, 1, 0), "a\nb\n")])
    assert ranges(moved) == [rng(7, 0, 9, 10)]
    assert moved[0].match == FINDING.match and moved[0].source_text == "src"


def test_lines_deleted_above_move_it_up_and_edits_below_or_at_its_end_leave_it() -> None:
    assert ranges(shift_findings([FINDING], [change(rng(0, 0, 2, 0), "")])) == [rng(3, 0, 5, 10)]
    assert shift_findings([FINDING], [change(rng(8, 0, 9, 3), "zz")]) == [FINDING]
    assert shift_findings([FINDING], [change(rng(7, 10, 7, 10), "typed")]) == [FINDING]


def test_same_line_edit_before_the_start_shifts_characters_in_utf16_units() -> None:
    f = Finding(rng(2, 4, 2, 9), {}, "")
    # "😋" is two UTF-16 code units
    assert ranges(shift_findings([f], [change(rng(2, 0, 2, 1), "😋x")])) == [rng(2, 6, 2, 11)]
    # a multi-line insertion before it on its line: the rest of the line moves to the new last line
    assert ranges(shift_findings([f], [change(rng(2, 2, 2, 2), "ab\ncd")])) == [rng(3, 4, 3, 9)]


def test_editing_inside_drops_it_and_a_whole_document_change_drops_everything() -> None:
    assert shift_findings([FINDING], [change(rng(6, 3, 6, 4), "y")]) == []
    assert shift_findings([FINDING], [change(None, "new text")]) == []


def test_changes_apply_in_order() -> None:
    changes = [change(rng(0, 0, 0, 0), "\n"), change(rng(0, 0, 1, 0), "")]  # insert a line, then remove it
    assert ranges(shift_findings([FINDING], changes)) == [rng(5, 0, 7, 10)]
