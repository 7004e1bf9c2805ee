"""CTranslate2 conversion: both families match transformers token for token in float32; int8
follows float32 on a trained model on every instruction set; the cache is content-keyed, reused and never trusts a
half-written folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.convert import checkpoint_key, convert_checkpoint
from engine.errors import ConversionError
from engine.loading import CT2_MARKER, inspect_model

PROMPTS = (
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "import os\n\nclass Config:\n    def __init__(self, path):",
    "<fim_prefix>def add(a, b):\n    <fim_suffix>\n\nprint(add(1, 2))<fim_middle>",
)
NEW_TOKENS = 32
FAMILIES = ("tiny_gptbigcode_dir", "tiny_starcoder2_dir")


def hf_greedy(
    hf_dir: Path, prompts=PROMPTS, new_tokens: int = NEW_TOKENS
) -> tuple[list[list[int]], list[list[int]]]:
    """Prompt ids and transformers' greedy continuations (no EOS stop)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir).eval()
    prompt_ids, outputs = [], []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.inference_mode():
            out = model.generate(
                ids, max_new_tokens=new_tokens, do_sample=False, eos_token_id=None, pad_token_id=0
            )
        prompt_ids.append(ids[0].tolist())
        outputs.append(out[0, ids.shape[1] :].tolist())
    return prompt_ids, outputs


def ct2_greedy(ct2_dir: Path, prompt_ids: list[list[int]], new_tokens: int = NEW_TOKENS) -> list[list[int]]:
    import ctranslate2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ct2_dir)
    generator = ctranslate2.Generator(str(ct2_dir), intra_threads=1)
    results = generator.generate_batch(
        [tokenizer.convert_ids_to_tokens(ids) for ids in prompt_ids],
        max_length=new_tokens,
        include_prompt_in_result=False,
        end_token=[],
    )
    return [r.sequences_ids[0] for r in results]


@pytest.mark.parametrize("fixture", FAMILIES)
def test_float32_matches_transformers_token_for_token(
    request: pytest.FixtureRequest, fixture: str, engine_cache_dir: Path
) -> None:
    hf_dir = request.getfixturevalue(fixture)
    ct2_dir = convert_checkpoint(hf_dir, quantization="float32")
    prompt_ids, expected = hf_greedy(hf_dir)
    assert ct2_greedy(ct2_dir, prompt_ids) == expected


@pytest.mark.parametrize("isa", ["native", "AVX2 (no VNNI)"])
def test_int8_follows_float32_on_a_trained_model_on_every_instruction_set(
    isa: str, engine_cache_dir: Path
) -> None:
    """int8 quality measured where it means something: the trained embedded model over real files
    (random weights' near-tied logits make argmax agreement a coin toss), under this CPU's own
    instruction set and under AVX2 without VNNI as oneDNN runs int8 on AVX2-only CPUs.

    Measured (benchmarks/int8_quality.py, AVX-512 machine): 0.946 agreement / 0.067 relative
    logits error natively, 0.918 / 0.091 with AVX2."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from int8_quality import ISAS, measure_in_subprocess

    if not (Path(__file__).resolve().parents[2] / "models" / "stackcoder-mini" / "hf").exists():
        pytest.skip("the embedded model is not in this checkout")
    result = measure_in_subprocess({**ISAS[isa], "STACKCODER_CACHE": str(engine_cache_dir)})
    assert result["agreement"] >= 0.88, result
    assert result["relative_logits_error"] <= 0.12, result


def test_multi_head_gptbigcode_converts(tmp_path: Path, engine_cache_dir: Path) -> None:
    """multi_query=False (which the library's own loader cannot convert) matches transformers."""
    from helpers.tiny_models import ensure_tiny_model

    hf_dir = ensure_tiny_model("gpt_bigcode", multi_query=False)
    ct2_dir = convert_checkpoint(hf_dir, tmp_path / "mha", quantization="float32")
    prompt_ids, expected = hf_greedy(hf_dir, PROMPTS[:2], 16)
    assert ct2_greedy(ct2_dir, prompt_ids, 16) == expected
    assert b"self_attention/multi_query" not in (ct2_dir / "model.bin").read_bytes()


def _multi_query_flags(ct2_dir: Path, layers: int) -> list[bool]:
    blob = (ct2_dir / "model.bin").read_bytes()
    return [f"decoder/layer_{i}/self_attention/multi_query".encode() in blob for i in range(layers)]


def test_multi_query_layers_are_marked_for_the_one_head_cache(
    tiny_gptbigcode_dir: Path, tmp_path: Path
) -> None:
    """Every layer of a multi-query checkpoint carries the runtime's multi-query flag (one
    key/value head cached instead of a copy per query head); without it the library's own
    conversion is what runs, and both give the same float32 tokens."""
    from engine.ct2_loaders import GPTBigCodeLoader

    layers = json.loads((tiny_gptbigcode_dir / "config.json").read_text())["n_layer"]
    marked = convert_checkpoint(tiny_gptbigcode_dir, tmp_path / "marked", quantization="float32")
    assert _multi_query_flags(marked, layers) == [True] * layers
    GPTBigCodeLoader.merged_multi_query = False
    try:
        plain = convert_checkpoint(tiny_gptbigcode_dir, tmp_path / "plain", quantization="float32")
    finally:
        GPTBigCodeLoader.merged_multi_query = True
    assert _multi_query_flags(plain, layers) == [False] * layers
    prompt_ids, _ = hf_greedy(tiny_gptbigcode_dir, PROMPTS[:2], 16)
    assert ct2_greedy(marked, prompt_ids, 16) == ct2_greedy(plain, prompt_ids, 16)


def test_cache_is_reused(tiny_gptbigcode_dir: Path, engine_cache_dir: Path) -> None:
    first = convert_checkpoint(tiny_gptbigcode_dir, quantization="int8")
    stamp = (first / "model.bin").stat().st_mtime_ns
    second = convert_checkpoint(tiny_gptbigcode_dir, quantization="int8")
    assert second == first and (second / "model.bin").stat().st_mtime_ns == stamp
    assert first.parent == engine_cache_dir / "ct2"
    assert json.loads((first / CT2_MARKER).read_text())["quantization"] == "int8"
    assert inspect_model(first).kind == "ct2"


def test_key_follows_content(tmp_path: Path, tiny_gptbigcode_dir: Path, engine_cache_dir: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(tiny_gptbigcode_dir, tmp_path / "copy"))
    assert checkpoint_key(copy, "int8") == checkpoint_key(tiny_gptbigcode_dir, "int8")
    assert checkpoint_key(copy, "int8") != checkpoint_key(copy, "float32")
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte of one weight changed
    weights.write_bytes(bytes(data))
    assert checkpoint_key(copy, "int8") != checkpoint_key(tiny_gptbigcode_dir, "int8")


def test_half_written_cache_entry_is_rebuilt(tiny_starcoder2_dir: Path, engine_cache_dir: Path) -> None:
    """A cache folder without the completion marker (conversion killed midway) is not used."""
    final = convert_checkpoint(tiny_starcoder2_dir, quantization="int8")
    (final / CT2_MARKER).unlink()
    (final / "model.bin").write_bytes(b"half")
    rebuilt = convert_checkpoint(tiny_starcoder2_dir, quantization="int8")
    assert rebuilt == final and (rebuilt / CT2_MARKER).exists()
    assert (rebuilt / "model.bin").stat().st_size > 1000
    leftovers = [p.name for p in final.parent.iterdir() if ".partial-" in p.name]
    assert leftovers == []


def test_refuses_to_overwrite_without_force(
    tmp_path: Path, tiny_gptbigcode_dir: Path, engine_cache_dir: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(ConversionError, match="--force"):
        convert_checkpoint(tiny_gptbigcode_dir, out)
    assert (out / "keep.txt").read_text() == "user data"
    convert_checkpoint(tiny_gptbigcode_dir, out, force=True)
    assert (out / CT2_MARKER).exists() and not (out / "keep.txt").exists()


def test_unknown_quantization(tiny_gptbigcode_dir: Path) -> None:
    with pytest.raises(ConversionError, match="choose one of"):
        convert_checkpoint(tiny_gptbigcode_dir, quantization="int3")


def test_conversion_failure_is_one_sentence(
    tmp_path: Path, tiny_gptbigcode_dir: Path, engine_cache_dir: Path
) -> None:
    """A checkpoint whose config disagrees with its weights fails cleanly and leaves nothing behind."""
    import shutil

    broken = Path(shutil.copytree(tiny_gptbigcode_dir, tmp_path / "broken"))
    config = json.loads((broken / "config.json").read_text())
    config["n_embd"] = 128
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError, match="failed"):
        convert_checkpoint(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".out")] == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # multi-query GPTBigCode: one key/value head cached (the loader marks the layers)
        ({"model_type": "gpt_bigcode", "n_layer": 20, "n_embd": 768, "n_head": 12}, 20 * 2 * 1 * 64 * 4),
        # multi-head GPTBigCode: every head
        (
            {"model_type": "gpt_bigcode", "n_layer": 2, "n_embd": 64, "n_head": 4, "multi_query": False},
            2 * 2 * 4 * 16 * 4,
        ),
        # Starcoder2's grouped-query heads are cached replicated, once per query head
        (
            {
                "model_type": "starcoder2",
                "num_hidden_layers": 30,
                "hidden_size": 3072,
                "num_attention_heads": 24,
                "num_key_value_heads": 2,
            },
            30 * 2 * 24 * 128 * 4,
        ),
    ],
)
def test_cached_bytes_per_token_follow_the_runtime_layout(
    tmp_path: Path, config: dict, expected: int
) -> None:
    from engine.convert import kv_bytes_per_token

    (tmp_path / "config.json").write_text(json.dumps(config))
    assert kv_bytes_per_token(tmp_path) == expected
