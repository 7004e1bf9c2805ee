"""The tokenizer stage: byte-level BPE with StarCoder's special tokens, in Hugging Face format.

Digits are split one by one and text is pre-tokenized byte-level as StarCoder's tokenizer does;
the FIM and repository tokens are added as special tokens so they are never split. The saved
folder loads with ``transformers.AutoTokenizer`` and the engine.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from training.errors import TokenizerError

__all__ = ["SPECIAL_TOKENS", "EOD", "train_tokenizer", "load_tokenizer", "bytes_per_token"]

log = logging.getLogger(__name__)

EOD = "<|endoftext|>"
# StarCoder's special tokens (in its order, so <|endoftext|> is id 0 and the FIM tokens 1-4),
# followed by StarCoder2's repository-context tokens.
SPECIAL_TOKENS = (
    EOD,
    "<fim_prefix>",
    "<fim_middle>",
    "<fim_suffix>",
    "<fim_pad>",
    "<filename>",
    "<gh_stars>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<jupyter_text>",
    "<jupyter_code>",
    "<jupyter_output>",
    "<empty_output>",
    "<commit_before>",
    "<commit_msg>",
    "<commit_after>",
    "<reponame>",
    "<file_sep>",
    "<repo_name>",
)


def _limited(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
    total = 0
    for text in texts:
        yield text
        total += len(text)
        if total >= max_bytes:
            return


def train_tokenizer(
    texts: Iterable[str],
    out: str | Path,
    *,
    vocab_size: int = 8192,
    max_bytes: int = 60_000_000,
    model_max_length: int = 1024,
):
    """Train byte-level BPE on texts (at most max_bytes characters) and save it to ``out``.

    Returns the ``transformers.PreTrainedTokenizerFast``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 512:
        raise TokenizerError(
            f"vocab_size {vocab_size} is too small; use at least 512 (256 bytes + merges + specials)."
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=True,
    )
    seen = {"n": 0}

    def counted() -> Iterator[str]:
        for text in _limited(texts, max_bytes):
            seen["n"] += 1
            yield text

    tok.train_from_iterator(counted(), trainer=trainer)
    if seen["n"] == 0:
        raise TokenizerError(
            "no training text was given; build the corpus first with `stackcoder train corpus`."
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOD,
        eos_token=EOD,
        unk_token=EOD,
        pad_token=EOD,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out)
    log.info("tokenizer with %d tokens saved to %s", len(fast), out)
    return fast


def load_tokenizer(path: str | Path):
    """Load a tokenizer folder saved by :func:`train_tokenizer` (or any HF tokenizer folder)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer.json").is_file():
        raise TokenizerError(f"{path} holds no tokenizer.json; train one with `stackcoder train tokenizer`.")
    tok = AutoTokenizer.from_pretrained(str(path))
    missing = [
        t for t in SPECIAL_TOKENS[:5] if tok.convert_tokens_to_ids(t) in (None, tok.unk_token_id) and t != EOD
    ]
    if missing:
        raise TokenizerError(
            f"tokenizer {path} lacks the FIM tokens {', '.join(missing)}; retrain it with this stage."
        )
    return tok


def bytes_per_token(tokenizer, texts: Iterable[str]) -> float:
    """Mean UTF-8 bytes per token over texts (higher is a more compact tokenizer)."""
    n_bytes = n_tokens = 0
    for text in texts:
        n_bytes += len(text.encode("utf-8"))
        n_tokens += len(tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids)
    return n_bytes / max(n_tokens, 1)


def write_summary(out: str | Path, summary: dict) -> None:
    """Store the stage's summary (vocabulary, bytes/token) next to the tokenizer."""
    Path(out, "tokenizer_summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
