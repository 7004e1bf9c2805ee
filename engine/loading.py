"""Inspect a model path before anything heavy is loaded.

A path may be a Hugging Face checkpoint folder, a CTranslate2 folder converted by the engine
(marked by ``stackcoder-ct2.json``) or a stackcoder bundle (``stackcoder.json`` naming an ``hf``
sub-folder and converted ``ct2`` sub-folders per quantization, or a ``base`` GGUF model with a
LoRA ``adapter`` that llama.cpp applies at load time). ``inspect_model`` checks the
architecture and the files and returns a ``ModelSource``; every problem becomes one
``EngineError`` sentence saying what is wrong and what to do.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import CorruptModelError, ModelNotFoundError, UnsupportedModelError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BUNDLE_MANIFEST = "stackcoder.json"
CT2_MARKER = "stackcoder-ct2.json"  # written last by the converter: its presence means "complete"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass(frozen=True)
class ModelFamily:
    """An architecture the engine runs, keyed by Hugging Face ``config.model_type``."""

    name: str  # config.model_type
    config_class: str  # transformers config class (the CTranslate2 converter's loader key)
    context_keys: tuple[str, ...]  # config fields holding the context window, first present wins


FAMILIES: dict[str, ModelFamily] = {
    "gpt_bigcode": ModelFamily("gpt_bigcode", "GPTBigCodeConfig", ("n_positions", "max_position_embeddings")),
    "starcoder2": ModelFamily("starcoder2", "Starcoder2Config", ("max_position_embeddings",)),
    "qwen2": ModelFamily("qwen2", "Qwen2Config", ("max_position_embeddings",)),
    "llama": ModelFamily("llama", "LlamaConfig", ("max_position_embeddings",)),
}

# llama.cpp's architecture names (GGUF ``general.architecture``) of the families above.
GGUF_ARCHITECTURES = {
    "starcoder": "gpt_bigcode",
    "starcoder2": "starcoder2",
    "qwen2": "qwen2",
    "llama": "llama",
}

# The KV cache a CPU engine allocates for a long-context model (Qwen2.5-Coder declares 32k tokens):
# prompts are budgeted far below this, chat histories are trimmed to it.
MAX_CONTEXT_TOKENS = 8192


def family_of(model_type: str, where: Path) -> ModelFamily:
    """The registered family of ``model_type``, or an error listing the supported ones."""
    family = FAMILIES.get(model_type)
    if family is None:
        raise UnsupportedModelError(
            f"{where} is a {model_type!r} model, which the engine cannot run; "
            f"use a checkpoint of a supported architecture ({', '.join(sorted(FAMILIES))})."
        )
    return family


@dataclass(frozen=True)
class ModelSource:
    """What a model path holds, checked but not loaded."""

    kind: str  # "hf" | "ct2" | "bundle" | "gguf"
    root: Path
    name: str
    family: str
    context_window: int
    tokenizer_dir: Path
    hf_dir: Path | None = None  # the Hugging Face checkpoint, when there is one
    ct2_dirs: dict[str, Path] = field(default_factory=dict)  # quantization -> converted folder
    gguf_file: Path | None = None  # a GGUF file llama.cpp loads as it is
    lora_file: Path | None = None  # a GGUF LoRA adapter llama.cpp applies to ``gguf_file``


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptModelError(
            f"{path} is not readable JSON ({exc.__class__.__name__}); restore the {what} from the original model."
        ) from None
    if not isinstance(data, dict):
        raise CorruptModelError(
            f"{path} does not hold a JSON object; restore the {what} from the original model."
        )
    return data


def check_safetensors(path: Path) -> None:
    """Check a .safetensors file's header and that its size matches the tensors it declares."""
    size = path.stat().st_size
    hint = "re-download or re-export the checkpoint"
    try:
        with path.open("rb") as handle:
            raw_len = handle.read(8)
            if len(raw_len) < 8:
                raise ValueError("file shorter than its header")
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > min(size - 8, 100_000_000):
                raise ValueError("header length beyond the end of the file")
            header = json.loads(handle.read(header_len))
        end = max(
            (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
            default=0,
        )
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise CorruptModelError(f"{path} is not a valid safetensors file ({exc}); {hint}.") from None
    if 8 + header_len + end != size:
        raise CorruptModelError(
            f"{path} is truncated or corrupt (its header declares {8 + header_len + end} bytes, "
            f"the file has {size}); {hint}."
        )


def _weight_files(folder: Path) -> list[Path]:
    for pattern in ("*.safetensors", "pytorch_model*.bin"):
        found = sorted(folder.glob(pattern))
        if found:
            return found
    return []


def _context_window(config: dict[str, Any], family: ModelFamily) -> int:
    for key in family.context_keys:
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def _check_tokenizer(folder: Path, model_dir: Path) -> None:
    if not (folder / "tokenizer.json").exists():
        raise CorruptModelError(
            f"{model_dir} has no tokenizer.json; copy the model's fast tokenizer files "
            "(tokenizer.json, tokenizer_config.json) into the folder."
        )


def inspect_hf(folder: Path) -> ModelSource:
    """Check a Hugging Face checkpoint folder: supported architecture, weights, tokenizer."""
    config = _read_json(folder / "config.json", "config.json")
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        raise CorruptModelError(
            f"{folder / 'config.json'} has no model_type; restore it from the original model."
        )
    family = family_of(model_type, folder)
    weights = _weight_files(folder)
    if not weights:
        raise CorruptModelError(
            f"{folder} has no weights (model.safetensors or pytorch_model.bin); "
            "copy the checkpoint's weight files into the folder."
        )
    for path in weights:
        if path.suffix == ".safetensors":
            check_safetensors(path)
        elif path.stat().st_size == 0:
            raise CorruptModelError(f"{path} is empty; re-download or re-export the checkpoint.")
    _check_tokenizer(folder, folder)
    return ModelSource(
        kind="hf",
        root=folder,
        name=folder.name,
        family=family.name,
        context_window=_context_window(config, family),
        tokenizer_dir=folder,
        hf_dir=folder,
    )


def inspect_ct2(folder: Path) -> ModelSource:
    """Check a CTranslate2 folder written by the engine's converter."""
    marker = folder / CT2_MARKER
    if not marker.exists():
        raise CorruptModelError(
            f"{folder} is not a complete CTranslate2 conversion made by stackcoder (no {CT2_MARKER}); "
            "convert the Hugging Face checkpoint again with `stackcoder convert`."
        )
    meta = _read_json(marker, CT2_MARKER)
    family = family_of(str(meta.get("family")), folder)
    if not (folder / "model.bin").exists():
        raise CorruptModelError(
            f"{folder} has no model.bin; convert the checkpoint again with `stackcoder convert`."
        )
    _check_tokenizer(folder, folder)
    return ModelSource(
        kind="ct2",
        root=folder,
        name=str(meta.get("name") or folder.name),
        family=family.name,
        context_window=int(meta.get("context_window") or 2048),
        tokenizer_dir=folder,
        ct2_dirs={str(meta.get("quantization", "int8")): folder},
    )


def inspect_bundle(folder: Path) -> ModelSource:
    """Check a stackcoder bundle: ``stackcoder.json`` naming an ``hf`` folder and ``ct2`` folders,
    and/or a ``base`` GGUF model with a GGUF LoRA adapter (``lora_gguf``) or a merged ``gguf`` file."""
    manifest = _read_json(folder / BUNDLE_MANIFEST, BUNDLE_MANIFEST)
    if manifest.get("format") != 1:
        raise CorruptModelError(
            f"{folder / BUNDLE_MANIFEST} has format {manifest.get('format')!r}, this engine reads format 1; "
            "update stackcoder or re-export the model."
        )
    hf = inspect_hf(folder / manifest["hf"]) if manifest.get("hf") else None
    ct2_dirs = {}
    ct2_source = None
    for quantization, sub in (manifest.get("ct2") or {}).items():
        ct2_source = inspect_ct2(folder / sub)
        ct2_dirs[str(quantization)] = ct2_source.root
    adapted = _adapted_base(folder, manifest) if manifest.get("base") else None
    base = hf or ct2_source or adapted
    if base is None:
        raise CorruptModelError(
            f"{folder / BUNDLE_MANIFEST} names neither an 'hf' nor a 'ct2' folder nor a 'base' model; "
            "re-export the model."
        )
    return ModelSource(
        kind="bundle",
        root=folder,
        name=str(manifest.get("name") or folder.name),
        family=base.family,
        context_window=adapted.context_window if adapted else base.context_window,
        tokenizer_dir=base.tokenizer_dir,
        hf_dir=hf.hf_dir if hf else None,
        ct2_dirs=ct2_dirs,
        gguf_file=adapted.gguf_file if adapted else None,
        lora_file=adapted.lora_file if adapted else None,
    )


def _adapted_base(folder: Path, manifest: dict[str, Any]) -> ModelSource:
    """The llama.cpp side of an adapter bundle: the merged ``gguf`` file when the bundle has one,
    else the ``base`` GGUF model (checked against the sha256 the adapter was trained on) with the
    ``lora_gguf`` adapter; the tokenizer is the copy saved in the bundle, else the base's."""
    ref = manifest["base"]
    where = folder / BUNDLE_MANIFEST
    if not isinstance(ref, dict) or not ({"catalog", "path"} & set(ref)):
        raise CorruptModelError(
            f"{where} names its base without 'catalog' or 'path'; re-export the adapter with `stackcoder train export`."
        )
    tokenizer_dir = folder / str(manifest.get("tokenizer", "adapter"))
    if manifest.get("gguf") or "tokenizer" in manifest:
        _check_tokenizer(tokenizer_dir, folder)
    if manifest.get("gguf"):
        from engine.gguf_source import inspect_gguf

        merged = inspect_gguf(folder / str(manifest["gguf"]))
        return dataclasses.replace(merged, tokenizer_dir=tokenizer_dir)
    lora = folder / str(manifest.get("lora_gguf", ""))
    if not manifest.get("lora_gguf") or not lora.is_file():
        raise CorruptModelError(
            f"{folder} has no GGUF LoRA adapter (lora_gguf in {BUNDLE_MANIFEST}); "
            "re-export it with `stackcoder train export RUN --out DIR`."
        )
    base = inspect_model(ref["catalog"] if "catalog" in ref else _bundle_path(folder, ref["path"]))
    if base.gguf_file is None:
        raise UnsupportedModelError(
            f"the base of {folder} ({ref.get('catalog') or ref.get('path')}) is no GGUF model, so llama.cpp cannot "
            "apply the adapter to it; export the bundle merged with `stackcoder train export RUN --merge`."
        )
    recorded = ref.get("sha256")
    actual = _catalog_sha256(ref["catalog"]) if "catalog" in ref else file_sha256(base.gguf_file)
    if recorded and actual != recorded:
        raise CorruptModelError(
            f"the adapter in {folder} was trained on a base with sha256 {str(recorded)[:12]}…, but "
            f"{ref.get('catalog') or base.gguf_file} is {actual[:12]}…; pull or point to that base, or train the "
            "adapter again on this one."
        )
    if not (tokenizer_dir / "tokenizer.json").exists():
        tokenizer_dir = base.tokenizer_dir  # a bundle without a copy of the tokenizer uses the base's
    return dataclasses.replace(base, tokenizer_dir=tokenizer_dir, lora_file=lora)


def _bundle_path(folder: Path, path: str) -> Path:
    target = Path(path).expanduser()
    return target if target.is_absolute() else folder / target


def _catalog_sha256(name: str) -> str:
    from engine.catalog import load_catalog

    return load_catalog().get(name).sha256


def file_sha256(path: Path) -> str:
    """The sha256 of a file, remembered per file identity (path, size, modification time)."""
    stat = path.stat()
    return _sha256_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _catalog_file(name: str) -> Path | None:
    """The pulled file of a catalog model called ``name`` (None when ``name`` is no catalog name)."""
    from engine.catalog import load_catalog

    catalog = load_catalog()
    if name not in catalog.entries:
        return None
    return catalog.pulled_path(name)  # raises, saying how to pull it, when it is not pulled


def inspect_model(path: str | Path) -> ModelSource:
    """Check what ``path`` holds and return its ``ModelSource``; raises an ``EngineError`` otherwise.

    ``path`` is a catalog name (``stackcoder models list``), a GGUF file, a folder holding one GGUF
    file, a Hugging Face checkpoint folder, a converted CTranslate2 folder or a stackcoder bundle."""
    from engine.gguf_source import inspect_gguf

    folder = Path(path).expanduser()
    if not folder.exists() and "/" not in str(path):
        pulled = _catalog_file(str(path))
        if pulled is not None:
            source = inspect_bundle(pulled) if pulled.is_dir() else inspect_gguf(pulled)
            return dataclasses.replace(source, name=str(path))
    if not folder.exists():
        raise ModelNotFoundError(
            f"model path {folder} does not exist; pass a catalog model name (`stackcoder models list`), "
            "a GGUF file or a folder holding a Hugging Face checkpoint, a converted CTranslate2 model "
            "or a stackcoder bundle (or set STACKCODER_MODEL)."
        )
    if folder.is_file():
        if folder.suffix == ".gguf":
            return inspect_gguf(folder.resolve())
        raise ModelNotFoundError(
            f"model path {folder} is a file but not a .gguf file; pass a GGUF file or the folder that holds the model."
        )
    folder = folder.resolve()
    if (folder / BUNDLE_MANIFEST).exists():
        return inspect_bundle(folder)
    if (folder / CT2_MARKER).exists() or (folder / "model.bin").exists():
        return inspect_ct2(folder)
    if (folder / "config.json").exists():
        return inspect_hf(folder)
    ggufs = sorted(folder.glob("*.gguf"))
    if len(ggufs) == 1:
        return inspect_gguf(ggufs[0])
    raise ModelNotFoundError(
        f"{folder} holds no model (no config.json, {CT2_MARKER}, {BUNDLE_MANIFEST} or single .gguf file); "
        "pass the folder of a Hugging Face checkpoint, a converted model or a GGUF file."
    )


def source_tokenizer(source: ModelSource) -> PreTrainedTokenizerFast:
    """The fast tokenizer of an inspected model (rebuilt once from the file for GGUF models)."""
    if source.kind == "gguf":
        from engine.gguf_source import ensure_tokenizer

        ensure_tokenizer(source)
    return load_tokenizer(source.tokenizer_dir)


def hf_checkpoint(source: ModelSource) -> Path | None:
    """The Hugging Face checkpoint of a model (dequantized once from a GGUF file), None if it has none."""
    if source.kind == "gguf":
        from engine.gguf_source import ensure_hf_checkpoint

        return ensure_hf_checkpoint(source)
    return source.hf_dir


def load_tokenizer(folder: Path) -> PreTrainedTokenizerFast:
    """Load the fast tokenizer saved in ``folder``."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # the library raises many types for a broken tokenizer
        raise CorruptModelError(
            f"the tokenizer in {folder} cannot be loaded ({exc.__class__.__name__}: {str(exc)[:120]}); "
            "restore tokenizer.json and tokenizer_config.json from the original model."
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise CorruptModelError(
            f"the tokenizer in {folder} is not a fast tokenizer; provide its tokenizer.json."
        )
    return tokenizer


def rope_theta(config: Any, default: float = 10_000.0) -> float:
    """The rotary base of a config (``rope_parameters`` in newer transformers, ``rope_theta`` before)."""
    params = getattr(config, "rope_parameters", None) or {}
    theta = params.get("rope_theta") if isinstance(params, dict) else None
    return float(theta or getattr(config, "rope_theta", None) or default)
