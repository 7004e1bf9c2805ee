"""The auto backend: cold prompts on the torch backend, the rest on CTranslate2, which computes
the cold prompt's head in the background; what the model answers is each backend's own answer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine import load_model
from engine.backends.routed import RoutedBackend
from engine.backends.torch_native import bf16_matmul_supported
from engine.generation import GenerationConfig
from engine.model import BACKEND_LOADERS, resolve_backend

LONG = "import os\n\n" + "".join(f"value_{i} = os.environ.get('KEY_{i}', '{i}')\n" for i in range(30))


@pytest.fixture(scope="module")
def routed(tiny_gptbigcode_dir: Path, engine_cache_dir: Path):
    """The routed backend on any CPU: built by ``auto``'s loader directly, where ``load_model``
    would pick plain CTranslate2 on a CPU without bfloat16 matrix instructions (the torch side
    then runs prompts in float32; routing decides the same way)."""
    _source, backend = BACKEND_LOADERS["auto"](
        str(tiny_gptbigcode_dir), threads=1, device="cpu", quantization=None
    )
    assert isinstance(backend, RoutedBackend)
    yield backend
    backend.close()


def _wait_for_head(backend: RoutedBackend, ids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not backend.steps.cached_tokens(ids) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_auto_resolves_by_model_and_cpu(tiny_gptbigcode_dir: Path, tiny_starcoder2_dir: Path) -> None:
    expected = "auto" if bf16_matmul_supported() else "ct2"
    assert resolve_backend("auto", str(tiny_gptbigcode_dir)) == expected
    assert resolve_backend("auto", str(tiny_starcoder2_dir)) == "ct2"
    assert resolve_backend("auto", str(tiny_gptbigcode_dir), quantization="int8") == "ct2"
    assert resolve_backend("auto", str(tiny_gptbigcode_dir), device="cuda") == "ct2"
    assert resolve_backend("torch", str(tiny_starcoder2_dir)) == "torch"


def test_cold_prompt_goes_to_torch_then_the_next_keystroke_to_ct2(routed: RoutedBackend) -> None:
    config = GenerationConfig(max_new_tokens=16)
    ids = routed.encode(LONG)
    assert len(ids) > 400
    assert routed.choose(ids, config) is routed.prompts
    before = dict(routed.routed)
    out = list(routed.generate_ids(ids, config))
    assert routed.routed["torch"] == before.get("torch", 0) + 1
    assert out == list(routed.prompts.generate_ids(ids, config))  # the torch backend's own answer
    _wait_for_head(routed, ids)
    typed = routed.encode(LONG + "value_30 = os")
    assert routed.steps.cached_tokens(typed) > 0  # the head computed in the background
    assert routed.choose(typed, config) is routed.steps
    assert list(routed.generate_ids(typed, config)) == list(routed.steps.generate_ids(typed, config))


def test_short_prompts_and_long_generations_go_to_ct2(routed: RoutedBackend) -> None:
    short = routed.encode("def add(a, b):\n    return")
    assert routed.choose(short, GenerationConfig(max_new_tokens=16)) is routed.steps
    cold = routed.encode(LONG.replace("KEY", "NAME"))
    assert routed.choose(cold, GenerationConfig(max_new_tokens=512)) is routed.steps


def test_one_request_stays_on_one_backend(routed: RoutedBackend) -> None:
    """Token healing calls generate_ids several times with the same pre-healing prompt."""
    ids = routed.encode(LONG.replace("KEY", "VAR"))
    config = GenerationConfig(max_new_tokens=8)
    first = routed.choose(ids[:-1], config, prompt=ids)
    list(routed.prompts.generate_ids(ids, config))  # the torch slot now holds the prompt
    assert routed.choose(ids[:-1] + [ids[-1]], config, prompt=ids) is first


def test_completions_through_the_model_and_close(tiny_gptbigcode_dir: Path, engine_cache_dir: Path) -> None:
    model = load_model(tiny_gptbigcode_dir, threads=1)
    first = model.complete(LONG, "\n", max_new_tokens=8, use_cache=False)
    again = model.complete(LONG, "\n", max_new_tokens=8, use_cache=False)
    assert first.latency_ms > 0 and isinstance(again.text, str)
    assert model.backend_name in ("auto", "ct2")
    model.close()
    warmer = getattr(model.backend, "_warmer", None)
    if warmer is not None:
        warmer.join(timeout=2)
        assert not warmer.is_alive()
