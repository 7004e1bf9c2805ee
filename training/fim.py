"""StarCoder's fill-in-the-middle transform, applied per document at character level.

With probability ``fim_rate`` a document is cut at two uniformly drawn character positions into
prefix, middle and suffix, then laid out in one of the two orders StarCoder trained on
(``spm_rate`` of them SPM):

* PSM: ``<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>{middle}``
* SPM: ``<fim_prefix><fim_suffix>{suffix}<fim_middle>{prefix}{middle}``

The FIM tokens are the tokenizer's own (``engine.prompts.detect_fim_format``: StarCoder's
``<fim_prefix>``, Qwen2.5-Coder's ``<|fim_prefix|>``, ...). The three pieces are tokenized separately, as in StarCoder's Megatron implementation, so a cut
never produces a token that spans it. Documents left alone are plain text. Every document ends
with the end-of-document token when packed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FimSplit", "FimTokens", "fim_split", "fim_encode"]


@dataclass(frozen=True)
class FimSplit:
    """A document cut for FIM: ``mode`` is "psm", "spm" or "none" (plain document in ``prefix``)."""

    mode: str
    prefix: str
    middle: str
    suffix: str

    @property
    def document(self) -> str:
        """The original document (prefix + middle + suffix)."""
        return self.prefix + self.middle + self.suffix


@dataclass(frozen=True)
class FimTokens:
    """Ids of the FIM special tokens."""

    prefix: int
    middle: int
    suffix: int

    @classmethod
    def from_tokenizer(cls, tokenizer) -> FimTokens:
        """Look the ids up in a Hugging Face tokenizer, in the model's own spelling of the FIM tokens
        (StarCoder's ``<fim_prefix>``, Qwen2.5-Coder's ``<|fim_prefix|>``, ...)."""
        from engine.prompts import detect_fim_format
        from training.errors import TokenizerError

        fmt = detect_fim_format(tokenizer.get_vocab().keys())
        if fmt is None:
            raise TokenizerError(
                "the tokenizer has no FIM tokens (<fim_prefix>, <|fim_prefix|>, ...); use a FIM-trained model's "
                "tokenizer or one from `stackcoder train tokenizer`, or pass --fim-rate 0."
            )
        ids = [tokenizer.convert_tokens_to_ids(t) for t in (fmt.prefix, fmt.middle, fmt.suffix)]
        return cls(*ids)


def fim_split(text: str, rng: random.Random, fim_rate: float = 0.5, spm_rate: float = 0.5) -> FimSplit:
    """Cut a document for FIM (or not) with StarCoder's rates."""
    if rng.random() >= fim_rate or len(text) < 2:
        return FimSplit("none", text, "", "")
    a, b = sorted((rng.randint(0, len(text)), rng.randint(0, len(text))))
    mode = "spm" if rng.random() < spm_rate else "psm"
    return FimSplit(mode, text[:a], text[a:b], text[b:])


def fim_encode(split: FimSplit, encode: Callable[[str], list[int]], ids: FimTokens) -> list[int]:
    """Token ids of a cut document in its FIM order (no end-of-document token)."""
    if split.mode == "none":
        return encode(split.prefix)
    prefix, middle, suffix = encode(split.prefix), encode(split.middle), encode(split.suffix)
    if split.mode == "psm":
        return [ids.prefix, *prefix, ids.suffix, *suffix, ids.middle, *middle]
    return [ids.prefix, ids.suffix, *suffix, ids.middle, *prefix, *middle]
