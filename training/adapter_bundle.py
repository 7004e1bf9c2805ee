"""Adapter bundles: a LoRA adapter in the engine's bundle format, and its merge with the base.

An adapter bundle holds ``stackcoder.json`` naming the ``base`` (catalog name, file and sha256,
or the path of a GGUF file or checkpoint), ``adapter/`` (peft's ``adapter_config.json`` and
``adapter_model.safetensors`` in float16, plus the base's tokenizer), ``adapter.gguf`` (the same
matrices as a GGUF LoRA adapter, which llama.cpp applies to the base's GGUF file at load time),
``train_state.json`` and ``loss.png``. ``engine.load_model(bundle)`` runs it on llama.cpp.

``export_adapter(..., merge=True)`` also writes the base with the adapter merged into its weights:
``hf/`` (float32 Hugging Face checkpoint, for transformers and CTranslate2) and a GGUF file
(``model.<type>.gguf``) that llama.cpp then loads instead of base + adapter.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.errors import ExportError

if TYPE_CHECKING:
    from training.lora import BaseModel

__all__ = ["ADAPTER_DIR", "LORA_GGUF", "MANIFEST", "export_adapter", "is_adapter_run", "write_adapter_bundle"]

MANIFEST = "stackcoder.json"
ADAPTER_DIR = "adapter"
LORA_GGUF = "adapter.gguf"
_WEIGHTS = "adapter_model.safetensors"


def is_adapter_run(path: str | Path) -> bool:
    """Whether ``path`` is an adapt run folder, its checkpoint, or an adapter bundle."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return "adapter" in json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    return any((p / ADAPTER_DIR / _WEIGHTS).is_file() for p in (path, path / "checkpoint"))


def write_adapter_bundle(
    checkpoint: Path, out: Path, *, base: BaseModel, tokenizer: Any, name: str, lora_dtype: str = "f16"
) -> Path:
    """Write the adapter bundle of an adapt checkpoint (adapter in float16, GGUF adapter, manifest)."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoConfig

    from engine.errors import ConversionError
    from engine.gguf_export import export_gguf_lora

    src = checkpoint / ADAPTER_DIR
    if not (src / _WEIGHTS).is_file():
        raise ExportError(
            f"{checkpoint} holds no adapter ({ADAPTER_DIR}/{_WEIGHTS}); train it with `stackcoder train adapt`."
        )
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / ADAPTER_DIR).mkdir(parents=True)
    weights = {k: v.half().contiguous() for k, v in load_file(str(src / _WEIGHTS)).items()}
    save_file(weights, str(tmp / ADAPTER_DIR / _WEIGHTS), metadata={"format": "pt"})
    shutil.copyfile(src / "adapter_config.json", tmp / ADAPTER_DIR / "adapter_config.json")
    tokenizer.save_pretrained(str(tmp / ADAPTER_DIR))
    manifest: dict[str, Any] = {
        "format": 1,
        "name": name,
        "base": base.reference,
        "adapter": ADAPTER_DIR,
        "tokenizer": ADAPTER_DIR,
    }
    try:
        export_gguf_lora(
            tmp / ADAPTER_DIR,
            tmp / LORA_GGUF,
            base_config=AutoConfig.from_pretrained(str(base.hf_dir)),
            dtype=lora_dtype,
        )
        manifest["lora_gguf"] = LORA_GGUF
    except ConversionError as exc:  # the bundle still merges; llama.cpp cannot apply it unmerged
        import logging

        logging.getLogger(__name__).warning("no GGUF adapter written: %s", exc)
    state = checkpoint / "train_state.json"
    if state.is_file():
        shutil.copyfile(state, tmp / "train_state.json")
    loss = checkpoint.parent / "loss.png"
    if loss.is_file():
        shutil.copyfile(loss, tmp / "loss.png")
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def _base_of(reference: dict[str, str]) -> BaseModel:
    from training.lora import resolve_base

    if "catalog" in reference:
        base = resolve_base(reference["catalog"])
    elif "path" in reference:
        base = resolve_base(reference["path"])
    else:
        raise ExportError(f"the bundle names its base as {reference}; export it again from its run.")
    if reference.get("sha256") and base.reference.get("sha256") != reference["sha256"]:
        raise ExportError(
            f"the base {reference.get('catalog') or reference.get('path')} is not the file the adapter was "
            f"trained on (sha256 {reference['sha256'][:12]}…); pull or point to that base."
        )
    return base


def merge_adapter(bundle: Path, hf_out: Path) -> Path:
    """The base with the bundle's (float16) adapter merged into its weights, saved as an HF checkpoint."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    base = _base_of(manifest["base"])
    model = AutoModelForCausalLM.from_pretrained(str(base.hf_dir), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(bundle / manifest["adapter"])).merge_and_unload()
    tmp = hf_out.with_name(hf_out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    merged.save_pretrained(str(tmp), safe_serialization=True)
    for item in (bundle / manifest.get("tokenizer", ADAPTER_DIR)).iterdir():
        if item.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copyfile(item, tmp / item.name)
    if hf_out.exists():
        shutil.rmtree(hf_out)
    tmp.rename(hf_out)
    return hf_out


def export_adapter(
    run: str | Path, out: str | Path, *, merge: bool = False, gguf_type: str = "q8_0", force: bool = False
) -> Path:
    """Write the adapter bundle of an adapt run (or copy a bundle) into ``out``; with ``merge``, add
    the merged ``hf/`` checkpoint and GGUF file, which the engine then loads instead."""
    from engine.gguf_export import GGUF_TYPES, export_gguf

    if gguf_type not in GGUF_TYPES:
        raise ExportError(f"unknown --gguf-type {gguf_type!r}; choose one of {', '.join(GGUF_TYPES)}.")
    run, out = Path(run), Path(out)
    source = run if (run / MANIFEST).is_file() else run / "bundle"
    if not (source / MANIFEST).is_file():
        raise ExportError(
            f"{run} holds no adapter bundle (bundle/{MANIFEST}); run `stackcoder train adapt` first."
        )
    if out.resolve() != source.resolve():
        if (out / MANIFEST).is_file() and not force:
            raise ExportError(f"{out} already holds a model bundle; pass --force to replace it.")
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(source, out)
    if merge:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        hf = merge_adapter(out, out / "hf")
        gguf_name = f"model.{gguf_type}.gguf"
        export_gguf(hf, out / gguf_name, quantization=gguf_type)
        manifest.update(hf="hf", gguf=gguf_name)
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return out
