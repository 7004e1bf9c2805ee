"""The export stage: a training checkpoint -> the engine's model bundle with a model card.

The bundle (e.g. models/stackcoder-mini) holds ``stackcoder.json`` (the engine's manifest),
``hf/`` (Hugging Face weights and tokenizer), ``ct2-int8/`` (converted by
:func:`engine.convert.convert_checkpoint`), ``train_state.json`` (so pretraining can continue
from the bundle), ``loss.png``, ``eval.json`` / ``eval.png`` when evaluated, and ``README.md``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from training.errors import ExportError

__all__ = ["export_bundle", "MANIFEST", "HF_FILES"]

MANIFEST = "stackcoder.json"
# Files of the hf/ folder that make a loadable checkpoint (others, if any, are left behind).
HF_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def export_bundle(
    run: str | Path,
    out: str | Path,
    *,
    name: str = "stackcoder-mini",
    quantization: str = "int8",
    force: bool = False,
) -> Path:
    """Write the bundle for a run folder, checkpoint folder or bundle ``run`` into ``out``."""
    from engine.convert import convert_checkpoint
    from engine.errors import EngineError
    from training.checkpoint import STATE_FILE, find_checkpoint

    ckpt = find_checkpoint(run)
    if ckpt is None:
        raise ExportError(f"{run} holds no checkpoint (hf/ and {STATE_FILE}); pass a pretrain run folder.")
    out = Path(out)
    if (out / MANIFEST).is_file() and not force and out.resolve() != ckpt.resolve():
        raise ExportError(f"{out} already holds a model bundle; pass --force to replace it.")
    out.mkdir(parents=True, exist_ok=True)
    hf_out = out / "hf"
    if hf_out.resolve() != (ckpt / "hf").resolve():
        if hf_out.exists():
            shutil.rmtree(hf_out)
        hf_out.mkdir()
        for fname in HF_FILES:
            src = ckpt / "hf" / fname
            if src.is_file():
                shutil.copyfile(src, hf_out / fname)
    state = json.loads((ckpt / STATE_FILE).read_text(encoding="utf-8"))
    if ckpt.resolve() != out.resolve():
        (out / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    loss_png = ckpt.parent / "loss.png"
    if loss_png.is_file() and loss_png.resolve() != (out / "loss.png").resolve():
        shutil.copyfile(loss_png, out / "loss.png")
    elif not (out / "loss.png").is_file():
        from training.plots import plot_loss

        plot_loss(state.get("history", []), out / "loss.png")
    ct2 = out / f"ct2-{quantization}"
    try:
        convert_checkpoint(hf_out, ct2, quantization=quantization, force=True)
    except EngineError as exc:
        raise ExportError(
            f"converting {hf_out} for the engine failed ({exc}); check the checkpoint."
        ) from exc
    manifest = {"format": 1, "name": name, "hf": "hf", "ct2": {quantization: ct2.name}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return out
