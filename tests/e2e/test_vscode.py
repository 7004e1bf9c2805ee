"""The product in a real VS Code: code-server 4.100.3 (VS Code 1.100.3) in Debian's Chromium,
driven by playwright-core, with the extension talking to the real `stackcoder serve` and model.
Screenshots land in artifacts/e2e/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lsp_server.streaming import LOOP_NOTE

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"


def _scenario(results: dict, name: str) -> dict:
    if name not in results:
        pytest.skip(f"scenario {name} not selected (STACKCODER_E2E_SCENARIOS)")
    outcome = results[name]
    assert "error" not in outcome, (
        f"{name}: {outcome['error']} (screenshot {ARTIFACTS / (name + '-failure.png')})"
    )
    return outcome


def test_status_bar_shows_the_running_server(vscode_run: dict, real_model_name: str) -> None:
    assert vscode_run["statusBar"].strip().startswith("stackcoder")
    ready = vscode_run["statusBarReady"].strip()
    assert ready == f"stackcoder: {real_model_name}", ready  # the product's default: the real model
    end = (vscode_run.get("statusBarEnd") or "").strip()
    assert end.startswith("stackcoder: ") and " ms" in end, end  # model name and last latency


def test_ghost_text_appears_while_typing_and_tab_accepts_it(vscode_run: dict, e2e_workspace: Path) -> None:
    outcome = _scenario(vscode_run, "ghost")
    assert outcome["ghost"].strip(), "ghost text was empty"
    before, after = outcome["before"], outcome["after"]
    assert before.startswith("def add(a, b):"), before
    assert after.startswith(before) and len(after) > len(before), (
        "Tab did not insert the suggestion",
        before,
        after,
    )
    first_piece = outcome["ghost"].replace("\u00a0", " ").split()[0]
    assert first_piece in after[len(before) - len(first_piece) :], (first_piece, after)
    assert (e2e_workspace / "ghost.py").read_text() == after
    assert (ARTIFACTS / "ghost-text.png").stat().st_size > 10_000
    session = outcome["sessionText"].replace("\n", " ")
    assert re.search(r"Accepted\s*[1-9]", session), session  # counted by the extension
    assert re.search(r"Server shown / accepted\s*[1-9]\d* / [1-9]", session), session  # and by the server


def test_a_suggestion_inside_an_auto_closed_bracket_fits_before_the_closer(
    vscode_run: dict, e2e_workspace: Path
) -> None:
    outcome = _scenario(vscode_run, "brackets")
    before, after = outcome["before"], outcome["after"]
    assert before.rstrip().endswith("()"), ("the editor did not close the bracket", before)
    assert outcome["ghost"].strip(), "ghost text was empty"
    assert after.startswith(before[: before.rstrip().rindex("(") + 1]) and len(after) > len(before), (
        before,
        after,
    )
    line = after.rstrip().splitlines()[-1]
    assert line.count("(") == line.count(")") and line.endswith(")"), line  # one closer, the editor's
    assert (e2e_workspace / "brackets.py").read_text() == after


def test_a_resting_cursor_is_warmed_up_and_enter_is_answered_from_the_cache(vscode_run: dict) -> None:
    _scenario(vscode_run, "warmup")
    log = vscode_run["serverLog"]
    # the cursor rested at the end of warm.py's last line (line 14, after `        for line in handle:`)
    warmed = re.findall(r"warm-up at warm\.py:14:27: (\d+) prompt", log)
    assert warmed and int(warmed[0]) >= 1, ("no warm-up reached the server", warmed)
    # Enter kept the indentation; that keystroke's suggestion was computed while the cursor rested,
    # and the extension's cache-only request showed it without waiting out the debounce
    answers = re.findall(r"\] (cache-only )?completion at warm\.py:15:12 .* cached=(True|False)", log)
    assert answers and answers[0] == ("cache-only ", "True"), answers


def test_explain_streams_into_the_chat_panel(vscode_run: dict) -> None:
    outcome = _scenario(vscode_run, "explain")
    assert "Explain this code" in outcome["question"]
    assert "class Item" in outcome["question"] or "dataclass" in outcome["question"]
    # no note, or the one the server adds when it stopped an answer caught in a loop
    assert outcome["note"] in (None, LOOP_NOTE), outcome["note"]
    assert outcome["text"].strip(), "the explanation was empty"
    # The webview received the answer as several $/progress deltas before the final text.
    assert outcome["deltas"] >= 2, f"the answer did not stream: {outcome['deltas']} delta(s)"


def test_a_chat_question_gets_an_answer(vscode_run: dict) -> None:
    outcome = _scenario(vscode_run, "chat")
    # no note, or the one the server adds when it stopped an answer caught in a loop
    assert outcome["note"] in (None, LOOP_NOTE), outcome["note"]
    assert outcome["text"].strip(), "the answer was empty"


def test_stop_ends_a_streaming_answer(vscode_run: dict) -> None:
    if "stop" not in vscode_run:
        pytest.skip("the Stop scenario runs only with STACKCODER_E2E_STOP=1 (needs a long-streaming answer)")
    outcome = _scenario(vscode_run, "stop")
    assert outcome["atClick"] > 0, "Stop was clicked before any of the answer arrived"
    assert outcome["note"] == "stopped", f"the answer was not marked stopped: {outcome['note']!r}"
    assert outcome["stopHidden"], "the Stop button still shows after the answer ended"
    assert outcome["text"].strip(), "the stopped answer lost the text that had streamed"
    # Nothing more arrives after the stopped answer is final.
    assert outcome["laterText"] == outcome["text"], (outcome["text"], outcome["laterText"])


def test_provenance_warning_for_code_pasted_from_the_corpus(vscode_run: dict) -> None:
    outcome = _scenario(vscode_run, "provenance")
    problems = outcome["problemsText"]
    assert "cpython" in problems and "colorsys.py" in problems, problems
    assert "cpython" in outcome["provenanceView"], outcome["provenanceView"]
    # Clicking the finding shows the matching corpus source side by side.
    assert "rgb_to_hls" in outcome["besideText"] or "maxc" in outcome["besideText"], outcome["besideText"]


def test_a_crashed_server_is_restarted_with_a_visible_message(vscode_run: dict) -> None:
    outcome = _scenario(vscode_run, "crash")
    assert "restarting it (1 of 3)" in outcome["message"], outcome["message"]
    assert outcome["newPids"] and outcome["oldPid"] not in outcome["newPids"], outcome
    status = outcome["statusAfter"].strip()
    assert status.startswith("stackcoder: ") and not status.startswith(
        ("stackcoder: loading", "stackcoder: no model", "stackcoder: starting")
    ), status


def test_a_quick_fix_marks_a_finding_as_mine(vscode_run: dict, e2e_workspace: Path) -> None:
    outcome = _scenario(vscode_run, "mine")
    assert any("this is my code" in row for row in outcome["menu"]), outcome["menu"]
    assert "marked as your own code" in outcome["message"], outcome["message"]
    assert outcome["marked"] and f"lines {outcome['marked']}" not in outcome["problemsAfter"], outcome
    entry = json.loads(outcome["mineJson"])["mine"][0]
    assert entry["repo"] == "cpython" and entry["path"].endswith("colorsys.py") and entry["lines"], entry
    assert '"mine"' in outcome["listText"].replace("\u00a0", " ")  # the list opened in the editor
    assert (ARTIFACTS / "mine-quickfix.png").stat().st_size > 10_000
    assert (ARTIFACTS / "mine-marked.png").stat().st_size > 10_000


def _copies_corpus(block: str, corpus: Path) -> bool:
    """Whether a code block holds 50 characters of an indexed file (whitespace-normalised lines)."""
    squash = " ".join(block.split())
    for source in corpus.rglob("*.py"):
        text = " ".join(source.read_text().split())
        if any(squash[i : i + 50] in text for i in range(0, max(len(squash) - 49, 1), 25)):
            return True
    return False


def test_a_chat_code_block_copied_from_the_corpus_carries_a_marker(
    vscode_run: dict, corpus_index: tuple[Path, Path]
) -> None:
    outcome = _scenario(vscode_run, "chatcode")
    copied = [  # a copy of a function: several lines, not a signature quoted in an explanation
        b
        for b in outcome["blocks"]
        if len(b.strip().splitlines()) >= 3 and _copies_corpus(b, corpus_index[1])
    ]
    if not copied:
        pytest.skip(f"the model's answer copied no indexed code this time: {outcome['text'][:300]!r}")
    assert outcome["marks"], ("a copied block carries no marker", outcome["blocks"])
    assert any("cpython" in m and "PSF-2.0" in m for m in outcome["marks"]), outcome["marks"]
    assert "cpython" in outcome["provenanceView"], outcome["provenanceView"]
    assert outcome["log"] and " | chat | chatcode.py:" in outcome["log"], outcome["log"]
    assert (ARTIFACTS / "chat-code-marker.png").stat().st_size > 10_000
