"""Packed training batches: documents -> pieces that fit a row -> FIM transform -> fixed-length rows.

FIM is applied at context level (Bavarian et al., 2022): each row of ``seq_len + 1`` tokens is
filled with pieces of documents, each piece cut (at a line boundary where one is near) to fit the
room left in the row and FIM-transformed on its own. So prefix, suffix and middle of every FIM
example lie in one row, whatever the documents' length; transforming whole documents and then
cutting them into short rows would put most middles rows away from their prefix and suffix. The
end-of-document token follows a document's last piece. Without FIM the rows are the documents'
tokens packed end to end.

The stream is deterministic and resumable: documents are visited in a permutation drawn per
epoch from the seed, each piece's FIM cut comes from a generator seeded by (seed, epoch,
document, piece start), and packed rows go through a shuffle pool from which each batch draws its
rows at random, so one batch mixes many files instead of consecutive pieces of one long file. The
state (epoch, position, the document under way, leftover tokens, the pool) is a JSON object.
Under data parallelism rank r of w takes every w-th document of the permutation.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training.fim import FimTokens, fim_encode, fim_split

__all__ = ["PackedStream", "heldout_blocks", "token_byte_lengths"]

# Tokens of a row's room kept free for the three FIM tokens and for the cut pieces tokenizing to a
# few more tokens than the same text inside the whole document; a FIM example that still overflows
# its row loses its last tokens. A room this small or smaller is filled with plain text.
FIM_SLACK = 8


@dataclass
class _OpenDocument:
    """The document being cut into pieces: its text, its tokens and where the next piece starts."""

    index: int
    text: str
    ids: list[int]
    starts: list[int]  # character offset where each token starts
    position: int = 0  # character offset of the next piece

    def token_at(self, char: int) -> int:
        """Index of the first token starting at or after ``char``."""
        return bisect.bisect_left(self.starts, char)


class PackedStream:
    """Rows of ``seq_len + 1`` token ids packed from pieces of documents with EOD after each document."""

    def __init__(
        self,
        docs: Sequence[str],
        tokenizer,
        *,
        seq_len: int,
        micro_batch: int,
        seed: int = 0,
        fim_rate: float = 0.5,
        spm_rate: float = 0.5,
        rank: int = 0,
        world: int = 1,
        pool_rows: int = 512,
    ) -> None:
        if not docs:
            from training.errors import CorpusError

            raise CorpusError("the training split is empty; build a corpus with `stackcoder train corpus`.")
        self.docs, self.seq_len, self.micro_batch = docs, seq_len, micro_batch
        self.seed, self.fim_rate, self.spm_rate, self.rank, self.world = seed, fim_rate, spm_rate, rank, world
        self._encode_fast = tokenizer.backend_tokenizer
        self.fim_ids = FimTokens.from_tokenizer(tokenizer) if fim_rate > 0 else FimTokens(-1, -1, -1)
        self.eod = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self.epoch, self.position = 0, 0
        self.document: _OpenDocument | None = None
        self.buffer: list[int] = []
        self.pool: list[list[int]] = []
        self.pool_rows = max(pool_rows, micro_batch)
        self.batches = 0
        self._order = self._permutation(self.epoch)

    def _encode(self, text: str) -> list[int]:
        return self._encode_fast.encode(text, add_special_tokens=False).ids

    def _permutation(self, epoch: int) -> np.ndarray:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.docs))
        return order[self.rank :: self.world] if len(order) >= self.world else order

    def _open(self, index: int, position: int = 0) -> _OpenDocument:
        text = self.docs[index]
        encoding = self._encode_fast.encode(text, add_special_tokens=False)
        starts = [start for start, _ in encoding.offsets]
        return _OpenDocument(index, text, list(encoding.ids), starts, position)

    def _next_document(self) -> _OpenDocument:
        if self.position >= len(self._order):
            self.epoch += 1
            self.position = 0
            self._order = self._permutation(self.epoch)
        index = int(self._order[self.position])
        self.position += 1
        return self._open(index)

    def _next_piece(self, room: int) -> list[int]:
        """Tokens of the open document's next piece, sized for ``room`` tokens (EOD after its last piece)."""
        if self.document is None:
            self.document = self._next_document()
        doc = self.document
        first = doc.token_at(doc.position)
        if self.fim_rate <= 0 or room <= 2 * FIM_SLACK:
            # text left of a token cut at a line boundary inside it is encoded on its own
            token_start = doc.starts[first] if first < len(doc.ids) else len(doc.text)
            piece = self._encode(doc.text[doc.position : token_start]) if token_start > doc.position else []
            last = min(first + max(room - len(piece), 0), len(doc.ids))
            piece += doc.ids[first:last]
            doc.position = doc.starts[last] if last < len(doc.ids) else len(doc.text)
        else:
            last = first + room - FIM_SLACK
            cut = len(doc.text)
            if last < len(doc.ids):
                cut = doc.starts[last]
                newline = doc.text.rfind("\n", doc.position, cut)
                if newline >= doc.position + (cut - doc.position) // 2:
                    cut = newline + 1
            rng = random.Random(f"{self.seed}:{self.epoch}:{doc.index}:{doc.position}")
            split = fim_split(doc.text[doc.position : cut], rng, self.fim_rate, self.spm_rate)
            piece = fim_encode(split, self._encode, self.fim_ids)
            doc.position = cut
        if doc.position >= len(doc.text):
            piece.append(self.eod)
            self.document = None
        return piece

    def _next_row(self) -> list[int]:
        need = self.seq_len + 1
        row, self.buffer = self.buffer[:need], self.buffer[need:]
        while len(row) < need:
            row.extend(self._next_piece(need - len(row)))
        return row[:need]

    def next_batch(self) -> torch.Tensor:
        """A (micro_batch, seq_len + 1) LongTensor; inputs are [:, :-1], targets [:, 1:]."""
        while len(self.pool) < self.pool_rows:
            self.pool.append(self._next_row())
        rng = np.random.default_rng([self.seed, self.rank, self.batches, 7])
        picks = sorted(
            rng.choice(len(self.pool), size=self.micro_batch, replace=False).tolist(), reverse=True
        )
        rows = []
        for i in picks:
            rows.append(self.pool[i])
            self.pool[i] = self.pool[-1]
            self.pool.pop()
        self.batches += 1
        return torch.tensor(rows, dtype=torch.long)

    @functools.cached_property
    def corpus_fingerprint(self) -> str:
        """A digest of the documents, so that a saved position is never applied to another corpus."""
        digest = hashlib.sha256()
        for text in self.docs:
            digest.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
        return digest.hexdigest()[:16]

    def state_dict(self) -> dict:
        """Position of the stream (JSON-serialisable)."""
        doc = self.document
        return {
            "corpus": self.corpus_fingerprint,
            "epoch": self.epoch,
            "position": self.position,
            "document": None if doc is None else [doc.index, doc.position],
            "buffer": list(self.buffer),
            "pool": self.pool,
            "batches": self.batches,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved position (a state without a pool starts with an empty one)."""
        saved = state.get("corpus")
        if saved is not None and saved != self.corpus_fingerprint:
            from training.errors import CorpusError

            raise CorpusError(
                f"the checkpoint's data position belongs to another corpus (fingerprint {saved}, this one is "
                f"{self.corpus_fingerprint}); train on the corpus it was written on, or pass another --out."
            )
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.buffer = [int(t) for t in state["buffer"]]
        self.pool = [[int(t) for t in row] for row in state.get("pool", [])]
        if any(len(row) != self.seq_len + 1 for row in self.pool):
            # saved at another --seq-len (a context extension): its rows go back to be cut again
            self.buffer = [t for row in self.pool for t in row] + self.buffer
            self.pool = []
        self.batches = int(state.get("batches", 0))
        self._order = self._permutation(self.epoch)
        under_way = state.get("document")
        self.document = None if under_way is None else self._open(int(under_way[0]), int(under_way[1]))


def heldout_blocks(
    docs: Sequence[str], tokenizer, *, seq_len: int, max_blocks: int, per_doc_blocks: int = 2, seed: int = 0
) -> torch.Tensor:
    """Fixed evaluation rows of ``seq_len + 1`` tokens from held-out documents (no FIM).

    Documents are visited in a seeded order and each contributes at most ``per_doc_blocks`` rows,
    so one long file cannot make up the whole evaluation set.
    """
    eod = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    backend = tokenizer.backend_tokenizer
    tokens: list[int] = []
    need = max_blocks * (seq_len + 1)
    for index in np.random.default_rng(seed).permutation(len(docs)):
        ids = backend.encode(docs[int(index)], add_special_tokens=False).ids[
            : per_doc_blocks * (seq_len + 1) - 1
        ]
        tokens.extend(ids)
        tokens.append(eod)
        if len(tokens) >= need:
            break
    n = min(len(tokens) // (seq_len + 1), max_blocks)
    if n == 0:
        from training.errors import CorpusError

        raise CorpusError("the held-out split is shorter than one sequence; hold out more repositories.")
    return torch.tensor(tokens[: n * (seq_len + 1)], dtype=torch.long).view(n, seq_len + 1)


def token_byte_lengths(tokenizer, vocab_size: int) -> torch.Tensor:
    """UTF-8 length in bytes of each token id (special tokens count 0) for bits-per-byte."""
    from tokenizers.decoders import ByteLevel  # noqa: F401  (the vocabulary is byte-level)

    byte_decoder = {c: b for b, c in _bytes_to_unicode().items()}
    special = set(tokenizer.all_special_ids)
    lengths = torch.zeros(vocab_size, dtype=torch.float64)
    for token, idx in tokenizer.get_vocab().items():
        if idx < vocab_size and idx not in special:
            lengths[idx] = sum(1 for ch in token if ch in byte_decoder)
    return lengths


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table used by byte-level BPE."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))
