"""Convert Hugging Face checkpoints to CTranslate2, into a cache keyed by the checkpoint's content.

The conversion is a fixed pipeline (inspect -> convert -> copy tokenizer -> mark complete) written
into a temporary sibling folder and renamed into place; the ``stackcoder-ct2.json`` marker is the
last file written, so a conversion killed midway is never mistaken for a valid one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from engine.errors import ConversionError, EngineError
from engine.loading import CT2_MARKER, TOKENIZER_FILES, ModelSource, inspect_ct2, inspect_hf
from engine.paths import ct2_cache_dir

log = logging.getLogger(__name__)

# Bump when the conversion recipe changes (e.g. a loader fix) so cached folders are rebuilt.
RECIPE_VERSION = 3

QUANTIZATIONS = (
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)


def default_quantization(device: str = "cpu") -> str:
    """int8 on CPU; int8_float16 on a CUDA device (bfloat16 where int8 kernels are missing)."""
    if device == "cuda":
        import ctranslate2

        supported = ctranslate2.get_supported_compute_types("cuda")
        return "int8_float16" if "int8_float16" in supported else "bfloat16"
    return "int8"


def check_quantization(quantization: str) -> str:
    """Return ``quantization`` if CTranslate2 knows it, else raise listing the known ones."""
    if quantization not in QUANTIZATIONS:
        raise ConversionError(
            f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}."
        )
    return quantization


def _file_digest(path: Path, memo_dir: Path) -> str:
    """xxh3-128 of a file's bytes, memoised by (path, size, mtime) so restarts do not re-read it."""
    import xxhash

    stat = path.stat()
    memo_key = xxhash.xxh3_64_hexdigest(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    memo = memo_dir / f"{memo_key}.digest"
    if memo.exists():
        return memo.read_text().strip()
    digest = xxhash.xxh3_128()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    value = digest.hexdigest()
    memo_dir.mkdir(parents=True, exist_ok=True)
    memo.write_text(value)
    return value


def checkpoint_key(hf_dir: Path, quantization: str) -> str:
    """A key naming the conversion of ``hf_dir`` at ``quantization`` by this engine version."""
    import ctranslate2
    import xxhash

    memo_dir = ct2_cache_dir() / ".digests"
    parts = [f"recipe={RECIPE_VERSION}", f"ct2={ctranslate2.__version__}", f"q={quantization}"]
    for path in sorted(hf_dir.iterdir()):
        if path.is_file() and (path.suffix in (".json", ".safetensors", ".bin", ".txt", ".model")):
            parts.append(f"{path.name}={_file_digest(path, memo_dir)}")
    return xxhash.xxh3_128_hexdigest("\n".join(parts).encode())


def kv_bytes_per_token(hf_dir: Path) -> int | None:
    """float32 key + value bytes the model caches per token (all layers), from its config.

    CTranslate2 caches one key/value head for multi-query GPTBigCode (``ct2_loaders`` marks it),
    but copies grouped-query heads once per query head before caching them (Starcoder2)."""
    config = json.loads((hf_dir / "config.json").read_text())
    if config.get("model_type") == "gpt_bigcode":
        layers, hidden, heads = config.get("n_layer"), config.get("n_embd"), config.get("n_head")
        kv_heads = 1 if config.get("multi_query", True) else heads
    else:
        layers, hidden, heads = (
            config.get("num_hidden_layers"),
            config.get("hidden_size"),
            config.get("num_attention_heads"),
        )
        kv_heads = heads  # grouped-query heads are cached replicated
    if not all(isinstance(v, int) and v > 0 for v in (layers, hidden, heads, kv_heads)):
        return None
    return layers * 2 * kv_heads * (hidden // heads) * 4


def _convert_into(source: ModelSource, staging: Path, quantization: str) -> None:
    """Run the CTranslate2 converter into ``staging`` and add the tokenizer and the marker."""
    import ctranslate2
    from ctranslate2.converters import TransformersConverter
    from tqdm import tqdm

    import engine.ct2_loaders  # noqa: F401  (registers the Starcoder2 / multi-head GPTBigCode loaders)

    assert source.hf_dir is not None
    steps = tqdm(total=3, desc=f"converting {source.name} ({quantization})", unit="step", leave=False)
    try:
        converter = TransformersConverter(str(source.hf_dir), low_cpu_mem_usage=True)
        converter.convert(str(staging), quantization=quantization, force=True)
        steps.update()
        for name in TOKENIZER_FILES:
            if (source.hf_dir / name).exists():
                shutil.copy2(source.hf_dir / name, staging / name)
        steps.update()
        meta = {
            "format": 1,
            "name": source.name,
            "family": source.family,
            "context_window": source.context_window,
            "quantization": quantization,
            "ctranslate2": ctranslate2.__version__,
            "recipe": RECIPE_VERSION,
            "kv_bytes_per_token": kv_bytes_per_token(source.hf_dir),
        }
        (staging / CT2_MARKER).write_text(json.dumps(meta, indent=2) + "\n")  # last: marks completion
        steps.update()
    finally:
        steps.close()


def _publish(staging: Path, final: Path, force: bool) -> None:
    """Move a finished conversion into place (replacing ``final`` only when ``force``)."""
    if final.exists():
        if not force:
            raise ConversionError(f"{final} already exists; pass --force to overwrite it.")
        trash = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    staging.rename(final)


def convert_checkpoint(
    hf_dir: str | Path,
    out_dir: str | Path | None = None,
    quantization: str = "int8",
    force: bool = False,
) -> Path:
    """Convert the checkpoint in ``hf_dir`` to CTranslate2 and return the converted folder.

    Args:
        hf_dir: a Hugging Face checkpoint folder of a supported family.
        out_dir: where to write; None converts into the content-keyed cache (and reuses it).
        quantization: one of ``QUANTIZATIONS`` (int8 on CPU by default).
        force: overwrite ``out_dir`` (or rebuild the cached entry) if it exists.
    Raises:
        EngineError: the checkpoint is missing, unsupported or corrupt, or conversion failed.
    """
    check_quantization(quantization)
    source = inspect_hf(Path(hf_dir).expanduser().resolve())
    if out_dir is None:
        final = ct2_cache_dir() / f"{source.family}-{checkpoint_key(source.root, quantization)[:24]}"
        if not force and (final / CT2_MARKER).exists():
            return final
        if final.exists() and not (final / CT2_MARKER).exists():
            force = True  # an unmarked folder in the cache is leftover junk
    else:
        final = Path(out_dir).expanduser().resolve()
        if final.exists() and not force:
            raise ConversionError(f"{final} already exists; pass --force to overwrite it.")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        _convert_into(source, staging, quantization)
        _publish(staging, final, force)
    except EngineError:
        raise
    except MemoryError:
        raise ConversionError(
            f"converting {source.root} ran out of memory; free memory or convert on a larger machine."
        ) from None
    except Exception as exc:
        raise ConversionError(
            f"converting {source.root} to CTranslate2 failed ({exc.__class__.__name__}: {str(exc)[:200]}); "
            "check that the checkpoint loads with transformers."
        ) from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log.info("converted %s -> %s (%s)", source.root, final, quantization)
    inspect_ct2(final)
    return final


def ct2_folder_for(source: ModelSource, quantization: str) -> Path:
    """The converted folder of ``source`` at ``quantization``: shipped with it, or converted (cached)."""
    check_quantization(quantization)
    if quantization in source.ct2_dirs:
        return source.ct2_dirs[quantization]
    if source.hf_dir is None:
        available = ", ".join(sorted(source.ct2_dirs)) or "none"
        raise ConversionError(
            f"{source.root} has no {quantization} conversion and no Hugging Face checkpoint to make one "
            f"(available: {available}); pick an available quantization."
        )
    return convert_checkpoint(source.hf_dir, None, quantization)
