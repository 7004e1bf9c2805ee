"""Packed training rows: context-level FIM keeps each example in one row, and the stream resumes exactly."""

from __future__ import annotations

import pytest

from training.data import PackedStream
from training.tokenizer import load_tokenizer

SEQ_LEN = 128


@pytest.fixture(scope="module")
def tokenizer(training_tokenizer_dir):
    return load_tokenizer(training_tokenizer_dir)


@pytest.fixture(scope="module")
def docs(training_corpus_dir) -> list[str]:
    from training.pretrain import load_split_texts

    texts = load_split_texts(training_corpus_dir, "train")
    assert max(len(t) for t in texts) > 8 * SEQ_LEN, "the fixture corpus needs documents longer than a row"
    return texts


def _stream(docs, tokenizer, **kwargs) -> PackedStream:
    return PackedStream(docs, tokenizer, seq_len=SEQ_LEN, micro_batch=4, seed=3, pool_rows=4, **kwargs)


def _rows(stream: PackedStream, batches: int) -> list[list[int]]:
    return [row for _ in range(batches) for row in stream.next_batch().tolist()]


def test_every_fim_example_lies_whole_in_one_row(docs, tokenizer) -> None:
    stream = _stream(docs, tokenizer, fim_rate=1.0, spm_rate=0.5)
    prefix, middle, suffix = tokenizer.convert_tokens_to_ids(["<fim_prefix>", "<fim_middle>", "<fim_suffix>"])
    rows = _rows(stream, 40)
    assert all(len(row) == SEQ_LEN + 1 for row in rows)
    examples = 0
    for row in rows:
        starts = [i for i, t in enumerate(row) if t == prefix]
        for n, start in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(row)
            example = row[start:end]
            # every <fim_prefix> in a row has its <fim_suffix> and <fim_middle> after it, in the same row
            assert suffix in example and middle in example, row
            examples += 1
        # nothing of a FIM example is left at the start of a row without its <fim_prefix>
        head = row[: starts[0]] if starts else row
        assert suffix not in head and middle not in head
    assert examples >= len(rows)  # long documents give every row at least one example


def test_fim_pieces_put_back_in_order_are_the_documents(docs, tokenizer) -> None:
    """Cutting documents into pieces loses no text: undoing each piece's FIM gives the files back."""
    from training.fim import FimTokens

    stream = _stream(docs, tokenizer, fim_rate=1.0, spm_rate=0.5)
    ids = FimTokens.from_tokenizer(tokenizer)
    eod = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    texts, text, orders = [], "", set()
    while len(texts) < 3:
        piece = stream._next_piece(SEQ_LEN + 1)
        if piece[0] == ids.prefix:
            orders.add("spm" if piece[1] == ids.suffix else "psm")
        ended = piece[-1] == eod
        text += _unfim(piece[:-1] if ended else piece, ids, tokenizer)
        if ended:
            texts.append(text)
            text = ""
    assert texts == [docs[int(i)] for i in stream._order[:3]]
    assert orders == {"psm", "spm"}


def _unfim(piece: list[int], ids, tokenizer) -> str:
    """The text of one FIM-transformed piece, put back in document order."""

    def decode(tokens: list[int]) -> str:
        return tokenizer.backend_tokenizer.decode(tokens, skip_special_tokens=False)

    if piece[0] != ids.prefix:  # a piece of one character stays plain
        return decode(piece)
    m = piece.index(ids.middle)
    if piece[1] == ids.suffix:  # SPM: <pre><suf>{suffix}<mid>{prefix}{middle}
        return decode(piece[m + 1 :]) + decode(piece[2:m])
    s = piece.index(ids.suffix)  # PSM: <pre>{prefix}<suf>{suffix}<mid>{middle}
    return decode(piece[1:s]) + decode(piece[m + 1 :]) + decode(piece[s + 1 : m])


def test_plain_rows_are_the_documents_tokens_end_to_end(docs, tokenizer) -> None:
    stream = _stream(docs, tokenizer, fim_rate=0.0)
    eod = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    order = [int(i) for i in stream._order]
    expected: list[int] = []
    for index in order[:4]:
        expected += tokenizer.backend_tokenizer.encode(docs[index], add_special_tokens=False).ids + [eod]
    produced: list[int] = []
    while len(produced) < len(expected):
        produced += stream._next_row()
    assert produced[: len(expected)] == expected


def test_the_stream_resumes_exactly_mid_document(docs, tokenizer) -> None:
    straight = _stream(docs, tokenizer, fim_rate=0.9, spm_rate=0.5)
    first = _rows(straight, 6)
    state = straight.state_dict()
    assert state["document"] is not None  # long documents: a save lands inside one
    rest = _rows(straight, 6)

    resumed = _stream(docs, tokenizer, fim_rate=0.9, spm_rate=0.5)
    import json

    resumed.load_state_dict(json.loads(json.dumps(state)))
    assert _rows(resumed, 6) == rest
    assert first != rest


def test_a_position_saved_on_another_corpus_is_refused(docs, tokenizer) -> None:
    from training.errors import CorpusError

    stream = _stream(docs, tokenizer, fim_rate=0.9)
    _rows(stream, 2)
    state = stream.state_dict()
    other = _stream(docs[:-1], tokenizer, fim_rate=0.9)
    with pytest.raises(CorpusError, match="another corpus"):
        other.load_state_dict(state)
