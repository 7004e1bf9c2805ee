"""Tiny StarCoder-family and Qwen2 checkpoints built from a config, for tests and benchmarks.

Nothing is downloaded: the tokenizer is a byte-level BPE trained on the spot on Python sources of
the standard library, with the StarCoder special tokens (FIM, ``<file_sep>``, ``<repo_name>``...),
and the models get random weights from a fixed seed. The folders look exactly like a Hugging Face
checkpoint (config.json, model.safetensors, tokenizer.json + tokenizer_config.json), so every
loader in the product treats them like a real model. Random weights emit gibberish: assert on
structure and behaviour, never on wording.

    from helpers.tiny_models import ensure_tiny_model
    path = ensure_tiny_model("gpt_bigcode")          # cached under $TMPDIR/stackcoder-test-models
    path = build_model(out_dir, "starcoder2", hidden_size=768, num_hidden_layers=20)  # any shape
    path = ensure_tiny_model("qwen2")                # Qwen2.5-Coder's special tokens and FIM spelling
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

# Bump when the recipe changes so cached folders are rebuilt.
RECIPE_VERSION = 2


# Standard-library modules the tokenizer is trained on (plain Python, present in every CPython).
TRAINING_MODULES = (
    "textwrap",
    "argparse",
    "json/__init__",
    "json/decoder",
    "json/encoder",
    "functools",
    "dataclasses",
    "pathlib",
    "shutil",
    "string",
    "difflib",
    "heapq",
    "bisect",
    "csv",
    "queue",
    "fractions",
)

# Default shapes: small enough to build in ~1 s and run a test in milliseconds.
TINY_SHAPES: dict[str, dict[str, Any]] = {
    "gpt_bigcode": {
        "n_embd": 64,
        "n_layer": 2,
        "n_head": 4,
        "n_positions": 1024,
        "multi_query": True,
        "initializer_range": 0.2,
    },
    "starcoder2": {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "initializer_range": 0.2,
    },
    "qwen2": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": True,
        "initializer_range": 0.2,
    },
}

# Qwen2.5-Coder's special tokens (its FIM, repository and ChatML tokens), <|endoftext|> first.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
# Qwen2's chat template reduced to ChatML (the engine chats through the tokenizer's template).
QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TOKENIZER_VOCAB_SIZE = 2048


def _training_texts() -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for name in TRAINING_MODULES:
        path = stdlib / f"{name}.py"
        if path.exists():
            texts.append(path.read_text(encoding="utf-8"))
    if not texts:
        raise RuntimeError(f"no standard-library sources found under {stdlib} to train the tokenizer on")
    return texts


def build_tokenizer(out_dir: str | os.PathLike[str], vocab_size: int = TOKENIZER_VOCAB_SIZE) -> Path:
    """Train a byte-level BPE tokenizer with the StarCoder special tokens and save it to ``out_dir``.

    The product's own recipe (``training.tokenizer``) on a few standard-library modules; the
    folder then holds tokenizer.json, tokenizer_config.json and special_tokens_map.json
    (loadable with ``AutoTokenizer.from_pretrained``).
    """
    from training.tokenizer import train_tokenizer

    train_tokenizer(_training_texts(), out_dir, vocab_size=vocab_size)
    return Path(out_dir)


def build_qwen_tokenizer(out_dir: str | os.PathLike[str], vocab_size: int = TOKENIZER_VOCAB_SIZE) -> Path:
    """Train a byte-level BPE tokenizer with Qwen2.5-Coder's special tokens and ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_texts(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(QWEN_SPECIAL_TOKENS[1:]),
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = QWEN_CHAT_TEMPLATE
    fast.save_pretrained(out_dir)
    return Path(out_dir)


def build_model(
    out_dir: str | os.PathLike[str],
    family: str = "gpt_bigcode",
    *,
    seed: int = 0,
    vocab_size: int | None = None,
    tokenizer_dir: str | os.PathLike[str] | None = None,
    **shape: Any,
) -> Path:
    """Write a random-weight checkpoint of ``family`` ("gpt_bigcode" | "starcoder2" | "qwen2") to ``out_dir``.

    ``shape`` overrides config fields (e.g. ``n_embd=768, n_layer=20`` for the tiny_starcoder_py
    shape); ``vocab_size`` defaults to the tokenizer's size (a larger one only adds unused rows).
    The tokenizer is trained into the folder unless ``tokenizer_dir`` points at one to copy.
    """
    import torch
    from transformers import (
        GPTBigCodeConfig,
        GPTBigCodeForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
        Starcoder2Config,
        Starcoder2ForCausalLM,
    )

    families = {
        "gpt_bigcode": (GPTBigCodeConfig, GPTBigCodeForCausalLM),
        "starcoder2": (Starcoder2Config, Starcoder2ForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    }
    if family not in families:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(sorted(families))}")
    config_cls, model_cls = families[family]

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is None:
        (build_qwen_tokenizer if family == "qwen2" else build_tokenizer)(out)
    else:
        for item in Path(tokenizer_dir).iterdir():
            if item.name.startswith(("tokenizer", "special_tokens", "chat_template")):
                shutil.copy2(item, out / item.name)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(out)
    eos_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")

    fields = dict(TINY_SHAPES[family])
    fields.update(shape)
    fields.update(
        vocab_size=vocab_size or len(tokenizer),
        bos_token_id=eos_id,
        eos_token_id=eos_id,
    )
    config = config_cls(**fields)
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    return out


def _cache_root() -> Path:
    return Path(tempfile.gettempdir()) / "stackcoder-test-models"


def ensure_tiny_model(family: str = "gpt_bigcode", **shape: Any) -> Path:
    """The tiny checkpoint of ``family``, built once and cached across test runs.

    Cached under ``$TMPDIR/stackcoder-test-models/<family>-<key>``, where the key hashes everything
    that builds it: the recipe, ``shape`` and the versions of the libraries that write the weights
    and the tokenizer (a model built by an older install is never reused); the folder is written to a temporary sibling and renamed into place, so a
    concurrent or interrupted build never leaves a half-written model behind.
    """
    import tokenizers
    import torch
    import transformers

    libraries = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }
    key_source = json.dumps(
        {"v": RECIPE_VERSION, "family": family, "shape": shape, "libraries": libraries}, sort_keys=True
    )
    key = hashlib.sha256(key_source.encode()).hexdigest()[:12]
    root = _cache_root()
    final = root / f"{family}-{key}"
    if (final / "config.json").exists() and (final / "model.safetensors").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{family}-", dir=root))
    try:
        build_model(staging, family, **shape)
        try:
            staging.rename(final)
        except OSError:  # another process finished first
            if not (final / "model.safetensors").exists():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final
