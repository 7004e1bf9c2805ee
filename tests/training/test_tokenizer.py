"""The tokenizer stage: byte-level BPE with StarCoder's special tokens, loadable by transformers."""

from __future__ import annotations

import pytest

from training.errors import TokenizerError
from training.tokenizer import SPECIAL_TOKENS, bytes_per_token, load_tokenizer, train_tokenizer


def test_special_tokens_and_round_trip(training_tokenizer_dir) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(training_tokenizer_dir))
    assert len(tok) == 600
    assert tok.convert_tokens_to_ids(list(SPECIAL_TOKENS[:5])) == [0, 1, 2, 3, 4]
    assert tok.eos_token == "<|endoftext|>"
    text = "def f(x):\n    return x + 123  # café\n"
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text
    fim = "<fim_prefix>a<fim_suffix>b<fim_middle>"
    assert tok.convert_ids_to_tokens(tok(fim)["input_ids"])[::2] == [
        "<fim_prefix>",
        "<fim_suffix>",
        "<fim_middle>",
    ]
    assert [t for t in tok.tokenize("x = 2024") if t.isdigit()] == ["2", "0", "2", "4"]


def test_bytes_per_token_and_loading(training_tokenizer_dir) -> None:
    tok = load_tokenizer(training_tokenizer_dir)
    assert 1.5 < bytes_per_token(tok, ["def function_name(argument):\n    return argument\n"]) < 8


def test_bad_input(tmp_path) -> None:
    with pytest.raises(TokenizerError, match="no training text"):
        train_tokenizer(iter(()), tmp_path / "t", vocab_size=600)
    with pytest.raises(TokenizerError, match="too small"):
        train_tokenizer(["x"], tmp_path / "t2", vocab_size=100)
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        load_tokenizer(tmp_path)
