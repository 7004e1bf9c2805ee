"""GGUF files as model sources: check one, and derive what the other engines need from it.

llama.cpp runs a GGUF file as it is. The rest of the engine needs the model's Hugging Face fast
tokenizer (prompt budgets, token healing, stop tokens), which transformers rebuilds from the
vocabulary stored in the file; the transformers and CTranslate2 backends need a dequantized
checkpoint. Both are derived once and cached under a key of the file's identity, written into a
temporary folder and renamed into place.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from engine.errors import ConversionError, CorruptModelError, UnsupportedModelError
from engine.paths import cache_dir

if TYPE_CHECKING:
    from engine.loading import ModelSource

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
RECIPE_VERSION = 1  # bump when what is derived from a GGUF file changes


class _Header:
    """Sequential reads of a GGUF header (little-endian), failing on a file that ends too soon."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        raw = self.handle.read(size)
        if len(raw) != size:
            raise ValueError("the file ends inside its header")
        return struct.unpack(fmt, raw)

    def string(self) -> str:
        (length,) = self.take("<Q")
        if length > 1 << 24:
            raise ValueError("a header string is impossibly long")
        raw = self.handle.read(length)
        if len(raw) != length:
            raise ValueError("the file ends inside its header")
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        (length,) = self.take("<Q")
        self.handle.seek(length, 1)

    def value(self, kind: int, keep: bool) -> object:
        from gguf.constants import GGUFValueType

        vtype = GGUFValueType(kind)
        if vtype == GGUFValueType.STRING:
            return self.string() if keep else self.skip_string()
        if vtype == GGUFValueType.ARRAY:  # vocabularies and merges: skipped, transformers reads them
            (item_kind, count) = self.take("<IQ")
            if GGUFValueType(item_kind) in (GGUFValueType.STRING, GGUFValueType.ARRAY):
                for _ in range(count):
                    self.value(item_kind, keep=False)
            else:
                self.handle.seek(struct.calcsize(_SCALARS[GGUFValueType(item_kind)]) * count, 1)
            return None
        (scalar,) = self.take("<" + _SCALARS[vtype])
        return scalar


def _scalar_formats() -> dict:
    from gguf.constants import GGUFValueType as T

    return {
        T.UINT8: "B",
        T.INT8: "b",
        T.UINT16: "H",
        T.INT16: "h",
        T.UINT32: "I",
        T.INT32: "i",
        T.FLOAT32: "f",
        T.BOOL: "?",
        T.UINT64: "Q",
        T.INT64: "q",
        T.FLOAT64: "d",
    }


_SCALARS: dict = {}


def gguf_metadata(path: Path) -> dict[str, object]:
    """``read_gguf_metadata``, remembered per file identity (a model is inspected more than once)."""
    stat = path.stat()
    return dict(_metadata_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _metadata_of(path: str, size: int, mtime_ns: int) -> dict[str, object]:
    return read_gguf_metadata(Path(path))


def read_gguf_metadata(path: Path) -> dict[str, object]:
    """The scalar and string metadata of a GGUF file, with every tensor checked to lie inside it.

    Reads the header sequentially and skips the vocabulary arrays (``gguf.GGUFReader`` builds
    numpy views of all 300k vocabulary entries: seconds per call for a Qwen vocabulary)."""
    from gguf.constants import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType

    if not _SCALARS:
        _SCALARS.update(_scalar_formats())
    hint = "download it again (catalog models: `stackcoder models pull NAME`)"
    meta: dict[str, object] = {}
    try:
        with path.open("rb") as handle:
            if handle.read(4) != GGUF_MAGIC:
                raise CorruptModelError(
                    f"{path} is not a GGUF file (it does not start with 'GGUF'); use a .gguf model file."
                )
            header = _Header(handle)
            version, n_tensors, n_fields = header.take("<IQQ")
            if version < 2:
                raise CorruptModelError(
                    f"{path} is GGUF version {version}; convert it to GGUF v3 with llama.cpp."
                )
            for _ in range(n_fields):
                key = header.string()
                (kind,) = header.take("<I")
                value = header.value(kind, keep=True)
                if value is not None:
                    meta[key] = value
            tensors = []
            for _ in range(n_tensors):
                name = header.string()
                (n_dims,) = header.take("<I")
                dims = header.take(f"<{n_dims}Q")
                qtype, offset = header.take("<IQ")
                tensors.append((name, dims, qtype, offset))
            alignment = int(meta.get("general.alignment", GGUF_DEFAULT_ALIGNMENT))  # type: ignore[call-overload]
            data_start = -(-handle.tell() // alignment) * alignment
    except (ValueError, struct.error, OSError) as exc:
        raise CorruptModelError(f"{path} is a truncated or corrupt GGUF file ({exc}); {hint}.") from None
    end = data_start
    for name, dims, qtype, offset in tensors:
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(qtype)]
        except (ValueError, KeyError):
            raise CorruptModelError(f"{path}: tensor {name} has an unknown type {qtype}; {hint}.") from None
        elements = 1
        for d in dims:
            elements *= d
        end = max(end, data_start + offset + elements // block * type_size)
    size = path.stat().st_size
    if end > size:
        raise CorruptModelError(
            f"{path} is truncated: its tensors need {end} bytes, the file has {size}; {hint}."
        )
    meta["stackcoder.tensor_count"] = n_tensors
    return meta


def inspect_gguf(path: Path) -> ModelSource:
    """Check a GGUF file: readable, complete, an architecture the engine runs."""
    from engine.loading import FAMILIES, GGUF_ARCHITECTURES, MAX_CONTEXT_TOKENS, ModelSource

    meta = gguf_metadata(path)
    arch = str(meta.get("general.architecture", ""))
    family = GGUF_ARCHITECTURES.get(arch)
    if family is None or family not in FAMILIES:
        raise UnsupportedModelError(
            f"{path} holds a {arch or 'unnamed'!r} model, which the engine cannot run; use a GGUF of a supported "
            f"architecture ({', '.join(sorted(GGUF_ARCHITECTURES))})."
        )
    context = int(meta.get(f"{arch}.context_length") or 2048)  # type: ignore[call-overload]
    name = str(meta.get("general.name") or path.stem)
    return ModelSource(
        kind="gguf",
        root=path.parent,
        name=path.stem if name.lower() in ("", "model") else name,
        family=family,
        context_window=min(context, MAX_CONTEXT_TOKENS),
        tokenizer_dir=derived_dir(path, "tokenizer"),
        gguf_file=path,
    )


def derived_dir(path: Path, what: str) -> Path:
    """Cache folder of what is derived from the GGUF file at ``path`` (keyed by its identity)."""
    import xxhash

    stat = path.stat()
    key = xxhash.xxh3_64_hexdigest(
        f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{RECIPE_VERSION}".encode()
    )
    return cache_dir() / "gguf" / f"{path.stem}-{key}" / what


def _publish(tmp: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another process published it first
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_tokenizer(source: ModelSource) -> Path:
    """The folder of the fast tokenizer rebuilt from the GGUF file (built once, then cached)."""
    assert source.gguf_file is not None
    target = source.tokenizer_dir
    if (target / "tokenizer.json").exists():
        return target
    from transformers import AutoTokenizer

    gguf = source.gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True
        )
    except Exception as exc:  # transformers raises many types for an unreadable vocabulary
        raise CorruptModelError(
            f"the tokenizer stored in {gguf} cannot be read ({exc.__class__.__name__}: {str(exc)[:120]})."
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tokenizer-", dir=target.parent))
    tokenizer.save_pretrained(str(tmp))
    _publish(tmp, target)
    return target


def ensure_hf_checkpoint(source: ModelSource) -> Path:
    """A dequantized float32 Hugging Face checkpoint of the GGUF file (for transformers and
    CTranslate2; about a minute for a 0.5B model, then cached)."""
    assert source.gguf_file is not None
    target = derived_dir(source.gguf_file, "hf")
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM

    gguf = source.gguf_file
    log.info("dequantizing %s into a Hugging Face checkpoint (once)", gguf)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True, dtype="float32"
        )
    except Exception as exc:
        raise ConversionError(
            f"transformers cannot dequantize {gguf} ({exc.__class__.__name__}: {str(exc)[:120]}); "
            "use the llamacpp backend for this file."
        ) from None
    # The weights are plain float32 now: the GGUF quantization must not be recorded as the checkpoint's.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".hf-", dir=target.parent))
    model.save_pretrained(str(tmp))
    shutil.copytree(ensure_tokenizer(source), tmp, dirs_exist_ok=True)
    (tmp / "stackcoder-source.json").write_text(json.dumps({"gguf": str(gguf)}) + "\n", encoding="utf-8")
    _publish(tmp, target)
    return target
