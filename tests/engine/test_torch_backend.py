"""The torch backend: the same tokens as the transformers reference (float32 prompts), close to it
in bfloat16, the shared prompt head reused, shapes padded, cancellation, concurrency, bad input."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.backends.hf import HFBackend
from engine.backends.torch_native import (
    SHAPE_BUCKET,
    TorchBackend,
    _Slot,
    parameter_count,
    should_use,
)
from engine.errors import CorruptModelError, GenerationError, UnsupportedModelError
from engine.generation import CancelToken, GenerationConfig
from engine.loading import load_tokenizer

PROMPTS = (
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "class Stack:\n    def push(self, item):\n",
    "x = [1, 2, 3]\nfor i in",
    "import os\n\n" + "".join(f"value_{i} = os.environ.get('KEY_{i}')\n" for i in range(40)),
)


@pytest.fixture(scope="module")
def mha_dir(tiny_gptbigcode_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPTBigCode with one key/value head per query head (multi_query=False)."""
    from helpers.tiny_models import build_model

    return build_model(
        tmp_path_factory.mktemp("mha") / "model",
        "gpt_bigcode",
        tokenizer_dir=tiny_gptbigcode_dir,
        n_embd=64,
        n_layer=2,
        n_head=4,
        n_positions=1024,
        multi_query=False,
        seed=3,
    )


@pytest.fixture(scope="module", params=["mqa", "mha"])
def pair(request: pytest.FixtureRequest, tiny_gptbigcode_dir: Path):
    """(torch backend with float32 prompts, transformers float32) on the same checkpoint."""
    hf_dir = tiny_gptbigcode_dir if request.param == "mqa" else request.getfixturevalue("mha_dir")
    tokenizer = load_tokenizer(hf_dir)
    native = TorchBackend(hf_dir, tokenizer, 1024, threads=1, prompt_dtype="float32")
    reference = HFBackend(hf_dir, tokenizer, 1024, threads=1)
    yield native, reference
    native.close()
    reference.close()


def test_float32_prompts_give_the_reference_tokens(pair) -> None:
    native, reference = pair
    config = GenerationConfig(max_new_tokens=24)
    for prompt in PROMPTS:
        ids = native.encode(prompt)
        assert list(native.generate_ids(ids, config)) == list(reference.generate_ids(ids, config))
        assert "".join(native.stream(prompt, config)) == "".join(reference.stream(prompt, config))


def test_logits_match_the_reference(pair) -> None:
    import torch

    native, reference = pair
    ids = native.encode(PROMPTS[3])
    slot = _Slot(native.n_layer, native.kv_heads, native.context_window, native.head_dim)
    ours = native._prompt(slot, ids, CancelToken())
    with torch.inference_mode():
        theirs = reference.model(torch.tensor([ids])).logits[0, -1].numpy()
    assert np.abs(ours - theirs).max() < 1e-3 * max(1.0, float(np.abs(theirs).max()))


def test_a_shared_prompt_head_is_not_run_again(pair) -> None:
    native, reference = pair
    config = GenerationConfig(max_new_tokens=12)
    base = native.encode(PROMPTS[3])
    list(native.generate_ids(base, config))
    computed = native.computed_tokens
    longer = base + native.encode("\nresult = value_1")
    out = list(native.generate_ids(longer, config))
    # only the appended tokens ran (the slot also held the tokens generated after ``base``)
    assert native.computed_tokens - computed <= len(longer) - len(base)
    assert out == list(reference.generate_ids(longer, config))


def test_a_keystroke_runs_its_few_new_tokens_as_steps(pair) -> None:
    native, reference = pair
    config = GenerationConfig(max_new_tokens=8)
    base = native.encode(PROMPTS[3])
    list(native.generate_ids(base, config))
    for extra in ("\nx", "\nresult = value_1 + value_2 * value_3"):  # two tokens; then many
        longer = base + native.encode(extra)
        computed = native.computed_tokens
        assert list(native.generate_ids(longer, config)) == list(reference.generate_ids(longer, config))
        assert native.computed_tokens - computed <= len(longer) - len(base)


def test_warming_the_shapes_changes_no_result(pair) -> None:
    native, reference = pair
    assert native.warm_shapes(max_tokens=4 * SHAPE_BUCKET) > 0
    ids = native.encode(PROMPTS[1])
    config = GenerationConfig(max_new_tokens=10)
    assert list(native.generate_ids(ids, config)) == list(reference.generate_ids(ids, config))


def test_lengths_off_the_shape_bucket_and_near_the_window(pair) -> None:
    native, reference = pair
    config = GenerationConfig(max_new_tokens=6)
    text = "".join(f"item_{i} = compute({i}, {i * 3})\n" for i in range(400))
    ids = native.encode(text)
    for length in (SHAPE_BUCKET - 1, SHAPE_BUCKET + 1, 3 * SHAPE_BUCKET + 5, 1024 - 6):
        prompt = ids[:length]
        assert len(prompt) == length
        assert list(native.generate_ids(prompt, config)) == list(reference.generate_ids(prompt, config))


def test_prompt_longer_than_the_window_is_refused(pair) -> None:
    native, _ = pair
    with pytest.raises(GenerationError, match="context window"):
        list(native.generate_ids(list(range(5, 1029)), GenerationConfig(max_new_tokens=4)))


def test_cancel_lands_within_one_step_and_before_start(pair) -> None:
    native, _ = pair
    cancel = CancelToken()
    produced = []
    for token in native.generate_ids(native.encode(PROMPTS[0]), GenerationConfig(max_new_tokens=200), cancel):
        produced.append(token)
        if len(produced) == 3:
            cancel.cancel()
    assert len(produced) == 3
    assert list(native.stream(PROMPTS[0], GenerationConfig(max_new_tokens=10), cancel)) == []


def test_seeds_make_sampling_reproducible(pair) -> None:
    native, _ = pair

    def sample(seed: int) -> list[int]:
        config = GenerationConfig(max_new_tokens=16, temperature=1.0, seed=seed)
        return list(native.generate_ids(native.encode(PROMPTS[0]), config))

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_concurrent_requests_get_their_own_caches(pair) -> None:
    native, _ = pair
    config = GenerationConfig(max_new_tokens=20)
    expected = {p: list(native.generate_ids(native.encode(p), config)) for p in PROMPTS}
    results: dict[str, list[int]] = {}

    def run(prompt: str) -> None:
        for _ in range(3):
            results[prompt] = list(native.generate_ids(native.encode(prompt), config))

    threads = [threading.Thread(target=run, args=(p,)) for p in PROMPTS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == expected
    assert len(native._slots) <= native.parallel_requests


def test_bfloat16_prompts_stay_close_to_float32(tiny_gptbigcode_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_gptbigcode_dir)
    exact = TorchBackend(tiny_gptbigcode_dir, tokenizer, 1024, threads=1, prompt_dtype="float32")
    fast = TorchBackend(tiny_gptbigcode_dir, tokenizer, 1024, threads=1, prompt_dtype="bfloat16")
    ids = exact.encode(PROMPTS[3])
    logits = [
        backend._prompt(_Slot(2, 1, 1024, backend.head_dim), ids, CancelToken()) for backend in (exact, fast)
    ]
    spread = float(logits[0].max() - logits[0].min())
    assert np.abs(logits[0] - logits[1]).max() < 0.05 * spread
    assert fast.prompt_dtype == "bfloat16" and exact.prompt_dtype == "float32"


def test_bad_checkpoints_are_refused(
    tiny_gptbigcode_dir: Path, tiny_starcoder2_dir: Path, tmp_path: Path
) -> None:
    tokenizer = load_tokenizer(tiny_gptbigcode_dir)
    with pytest.raises(UnsupportedModelError, match="GPTBigCode"):
        TorchBackend(tiny_starcoder2_dir, load_tokenizer(tiny_starcoder2_dir), 1024)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_gptbigcode_dir, broken)
    config = json.loads((broken / "config.json").read_text())
    config["n_embd"] = 2 * config["n_embd"]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorruptModelError, match="do not match its config.json"):
        TorchBackend(broken, tokenizer, 1024)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CorruptModelError, match="cannot be read"):
        TorchBackend(broken, tokenizer, 1024)


def test_parameter_count_matches_the_checkpoint(tiny_gptbigcode_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    config = json.loads((tiny_gptbigcode_dir / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(tiny_gptbigcode_dir)
    assert parameter_count(config) == sum(p.numel() for p in model.parameters())
    assert not should_use(tiny_gptbigcode_dir, "starcoder2", "cpu")
    assert not should_use(None, "gpt_bigcode", "cpu")
