"""Instruction data for SFT: the instruct template, tokenisation with the loss on the response only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.errors import ConfigError, CorpusError

__all__ = ["PROMPT_TEMPLATE", "CHAT_TEMPLATE", "IGNORE_INDEX", "load_pairs", "encode_pair", "collate"]

PROMPT_TEMPLATE = "### Instruction\n{instruction}\n\n### Response\n"
# Jinja chat template saved with the tokenizer, so chat front-ends (and the engine) use the same format.
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}### Instruction\n{{ m['content'] }}\n\n### Response\n"
    "{% elif m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}\n\n{% endif %}{% endfor %}"
)
IGNORE_INDEX = -100  # label value the loss skips (the prompt's tokens and padding)


def load_pairs(path: str | Path) -> list[dict[str, str]]:
    """``{"instruction", "response"}`` records of a jsonl file (the self-instruct ``dataset.jsonl``).

    Raises:
        CorpusError: the file is missing, empty or a line lacks one of the two fields.
    """
    file = Path(path)
    if not file.is_file():
        raise CorpusError(
            f"SFT data {file} does not exist; run `stackcoder train self-instruct` or pass a jsonl file"
        )
    pairs = []
    with open(file, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(
                    f"line {number} of {file} is not JSON ({exc.msg}); fix or remove it"
                ) from exc
            if not isinstance(record.get("instruction"), str) or not isinstance(record.get("response"), str):
                raise CorpusError(
                    f"line {number} of {file} lacks a string 'instruction' or 'response'; fix or remove it"
                )
            pairs.append({"instruction": record["instruction"], "response": record["response"]})
    if not pairs:
        raise CorpusError(
            f"SFT data {file} holds no examples; self-instruct kept nothing, generate more first"
        )
    return pairs


def encode_pair(tokenizer: Any, instruction: str, response: str, max_len: int) -> dict[str, list[int]] | None:
    """Token ids and labels of one example; the prompt's labels are ``IGNORE_INDEX``.

    The response ends with the EOS token so the model learns to stop. Returns None when the
    prompt alone leaves no room for the response within ``max_len`` tokens.
    """
    if max_len < 8:
        raise ConfigError("--max-seq-len must be at least 8")
    prompt_ids = tokenizer(PROMPT_TEMPLATE.format(instruction=instruction), add_special_tokens=False)[
        "input_ids"
    ]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        response_ids = [*response_ids, tokenizer.eos_token_id]
    room = max_len - len(prompt_ids)
    if room < 1:
        return None
    response_ids = response_ids[:room]
    return {
        "input_ids": prompt_ids + response_ids,
        "labels": [IGNORE_INDEX] * len(prompt_ids) + response_ids,
    }


def collate(batch: Sequence[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch into tensors; padding gets attention 0 and label ``IGNORE_INDEX``."""
    import torch

    width = max(len(ex["input_ids"]) for ex in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ex in enumerate(batch):
        n = len(ex["input_ids"])
        ids[row, :n] = torch.tensor(ex["input_ids"])
        labels[row, :n] = torch.tensor(ex["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
