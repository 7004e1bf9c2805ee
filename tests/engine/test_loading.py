"""Inspecting model paths: supported checkpoints load; every bad input is one clear EngineError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.errors import CorruptModelError, ModelNotFoundError, UnsupportedModelError
from engine.loading import FAMILIES, inspect_model, load_tokenizer


@pytest.fixture
def model_copy(tmp_path: Path, tiny_gptbigcode_dir: Path) -> Path:
    """A scratch copy of the tiny GPTBigCode checkpoint to damage."""
    return Path(shutil.copytree(tiny_gptbigcode_dir, tmp_path / "model"))


@pytest.mark.parametrize(
    ("fixture", "family"), [("tiny_gptbigcode_dir", "gpt_bigcode"), ("tiny_starcoder2_dir", "starcoder2")]
)
def test_inspects_hf_checkpoints(request: pytest.FixtureRequest, fixture: str, family: str) -> None:
    source = inspect_model(request.getfixturevalue(fixture))
    assert (source.kind, source.family, source.context_window) == ("hf", family, 1024)
    tokenizer = load_tokenizer(source.tokenizer_dir)
    assert tokenizer.convert_tokens_to_ids("<fim_middle>") != tokenizer.unk_token_id


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        inspect_model(tmp_path / "nowhere")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        inspect_model(path)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="holds no model"):
        inspect_model(tmp_path)


def test_missing_weights(model_copy: Path) -> None:
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(CorruptModelError, match="has no weights"):
        inspect_model(model_copy)


def test_truncated_safetensors(model_copy: Path) -> None:
    weights = model_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModelError, match="truncated or corrupt"):
        inspect_model(model_copy)


def test_garbage_safetensors(model_copy: Path) -> None:
    (model_copy / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(CorruptModelError, match="not a valid safetensors"):
        inspect_model(model_copy)


def test_unsupported_architecture_lists_supported(model_copy: Path) -> None:
    config = json.loads((model_copy / "config.json").read_text())
    config["model_type"] = "mamba"
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError) as info:
        inspect_model(model_copy)
    assert "'mamba'" in str(info.value)
    assert all(name in str(info.value) for name in FAMILIES)


def test_corrupt_config(model_copy: Path) -> None:
    (model_copy / "config.json").write_text("{not json")
    with pytest.raises(CorruptModelError, match="not readable JSON"):
        inspect_model(model_copy)


def test_missing_tokenizer(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()
    with pytest.raises(CorruptModelError, match="no tokenizer.json"):
        inspect_model(model_copy)


def test_corrupt_tokenizer(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").write_text("{broken")
    with pytest.raises(CorruptModelError, match="cannot be loaded"):
        load_tokenizer(model_copy)


def test_unmarked_ct2_folder_is_refused(tmp_path: Path) -> None:
    """A CTranslate2 folder without the completion marker (e.g. a killed conversion) is never used."""
    (tmp_path / "model.bin").write_bytes(b"\0" * 16)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CorruptModelError, match="not a complete CTranslate2 conversion"):
        inspect_model(tmp_path)


def test_bundle_manifest(tmp_path: Path, tiny_gptbigcode_dir: Path) -> None:
    shutil.copytree(tiny_gptbigcode_dir, tmp_path / "hf")
    (tmp_path / "stackcoder.json").write_text(json.dumps({"format": 1, "name": "mini", "hf": "hf"}))
    source = inspect_model(tmp_path)
    assert (source.kind, source.name, source.family) == ("bundle", "mini", "gpt_bigcode")
    assert source.hf_dir == (tmp_path / "hf").resolve()
    (tmp_path / "stackcoder.json").write_text(json.dumps({"format": 2, "hf": "hf"}))
    with pytest.raises(CorruptModelError, match="format 1"):
        inspect_model(tmp_path)


def test_checkpoint_missing_a_tensor_is_refused(model_copy: Path) -> None:
    """transformers silently re-initialises a missing tensor; the engine refuses instead."""
    from safetensors.torch import load_file, save_file

    from engine.backends.hf import HFBackend

    tensors = load_file(model_copy / "model.safetensors")
    del tensors["transformer.ln_f.weight"]
    save_file(tensors, model_copy / "model.safetensors", metadata={"format": "pt"})
    inspect_model(model_copy)  # the file itself is sound
    with pytest.raises(CorruptModelError, match="do not match its config.json"):
        HFBackend(model_copy, load_tokenizer(model_copy), 1024, threads=1)
