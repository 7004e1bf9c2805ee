"""Export a StarCoder-family or Qwen2 checkpoint, or a LoRA adapter, to GGUF for llama.cpp.

llama.cpp runs GPTBigCode under its ``starcoder`` architecture, Starcoder2 under ``starcoder2``
and Qwen2 (Qwen2.5-Coder) under ``qwen2``. The weights are written with the ``gguf`` package, whose tensor-name map gives
each Hugging Face parameter its GGUF name: matrices as Q8_0 (llama.cpp's 8-bit format, the
counterpart of CTranslate2's int8) or F16/F32, norms, biases and position embeddings as F32, and
the Hugging Face byte-level BPE vocabulary with its merges, so that llama.cpp tokenises exactly
as the model was trained.

    from engine.gguf_export import export_gguf
    export_gguf("models/stackcoder-mini/hf", "/tmp/stackcoder-mini.q8_0.gguf")

A peft LoRA adapter becomes a GGUF LoRA adapter (``general.type = "adapter"``, tensors named
``<base tensor>.lora_a`` / ``.lora_b``, as llama.cpp's ``convert_lora_to_gguf.py`` writes them),
which llama.cpp applies to the base model's own GGUF file at load time (``lora_path``):

    export_gguf_lora("run/bundle/adapter", "run/bundle/adapter.gguf", base_config=config)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from engine.errors import ConversionError
from engine.loading import rope_theta

__all__ = ["GGUF_TYPES", "export_gguf", "export_gguf_lora", "gguf_file_for"]

# Quantisation name -> (tensor type of matrices, llama.cpp file type)
GGUF_TYPES = {"q8_0": ("Q8_0", "MOSTLY_Q8_0"), "f16": ("F16", "MOSTLY_F16"), "f32": ("F32", "ALL_F32")}

_KEEP_F32 = ("position_embd.weight",)  # small, and read by row: exact is cheap
# Buffers some checkpoints carry that are not parameters (causal masks, rotary frequencies).
_BUFFERS = (".attn.masked_bias", ".attn.bias", ".rotary_emb.inv_freq")


def _rotary_decoder(config) -> dict:
    """The hyper-parameters GGUF records alike for Starcoder2 and Qwen2 (grouped-query, rotary)."""
    return {
        "context_length": config.max_position_embeddings,
        "embedding_length": config.hidden_size,
        "feed_forward_length": config.intermediate_size,
        "block_count": config.num_hidden_layers,
        "head_count": config.num_attention_heads,
        "head_count_kv": config.num_key_value_heads,
    }


def _architecture(config) -> tuple[str, dict]:
    """llama.cpp's architecture name and the hyper-parameters GGUF records, from an HF config."""
    if config.model_type == "gpt_bigcode" and getattr(config, "multi_query", True):
        return "starcoder", {
            "context_length": config.n_positions,
            "embedding_length": config.n_embd,
            "feed_forward_length": config.n_inner or 4 * config.n_embd,
            "block_count": config.n_layer,
            "head_count": config.n_head,
            "head_count_kv": 1,
            "layer_norm_eps": config.layer_norm_epsilon,
        }
    if config.model_type == "starcoder2":
        return "starcoder2", {
            **_rotary_decoder(config),
            "layer_norm_eps": config.norm_epsilon,
            "rope_freq_base": rope_theta(config),
        }
    if config.model_type == "qwen2":
        # Rotary positions in llama.cpp's NEOX layout, which is Hugging Face's: no permutation.
        return "qwen2", {
            **_rotary_decoder(config),
            "layer_norm_rms_eps": config.rms_norm_eps,
            "rope_freq_base": rope_theta(config, 1_000_000.0),
        }
    raise ConversionError(
        "GGUF export handles Qwen2, multi-query GPTBigCode (StarCoder) and Starcoder2 checkpoints; "
        f"this one is {config.model_type}."
    )


def _vocabulary(hf_dir: Path, vocab_size: int) -> tuple[list[str], list[int], list[str], dict[str, int]]:
    """Tokens by id (padded to the model's ``vocab_size``), their GGUF token types, BPE merges and
    the special ids, from tokenizer.json."""
    from gguf import TokenType

    path = hf_dir / "tokenizer.json"
    if not path.is_file():
        raise ConversionError(f"{hf_dir} has no tokenizer.json; GGUF export needs the fast tokenizer's file.")
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model", {})
    if model.get("type") != "BPE":
        raise ConversionError(
            f"{path} is a {model.get('type')} tokenizer; GGUF export handles byte-level BPE."
        )
    vocab: dict[str, int] = dict(model["vocab"])
    special = {t["content"]: t["id"] for t in data.get("added_tokens", []) if t.get("special")}
    vocab.update(special)
    size = max(vocab_size, max(vocab.values()) + 1)
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [int(TokenType.UNUSED)] * size
    for text, idx in vocab.items():
        tokens[idx] = text
        types[idx] = int(TokenType.CONTROL if text in special else TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return tokens, types, merges, special


def _chat_template(hf_dir: Path) -> str | None:
    """The tokenizer's chat template (tokenizer_config.json or chat_template.jinja), if it has one."""
    jinja = hf_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = hf_dir / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        return template if isinstance(template, str) else None
    return None


def _pre_tokenizer(hf_dir: Path, arch: str) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenisation (StarCoder splits digits one by one)."""
    if arch == "qwen2":
        return "qwen2"
    data = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))
    pre = json.dumps(data.get("pre_tokenizer") or {})
    return "starcoder" if '"individual_digits": true' in pre else "gpt-2"


def export_gguf(
    hf_dir: str | Path, out: str | Path, *, quantization: str = "q8_0", progress: bool = False
) -> Path:
    """Write a GPTBigCode, Starcoder2 or Qwen2 checkpoint as a GGUF file for llama.cpp; returns ``out``.

    The file is written under a temporary name and renamed, so a killed export leaves no file
    that looks complete.
    """
    import gguf
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if quantization not in GGUF_TYPES:
        raise ConversionError(
            f"unknown GGUF quantization {quantization!r}; choose one of {', '.join(GGUF_TYPES)}."
        )
    hf_dir, out = Path(hf_dir), Path(out)
    config = AutoConfig.from_pretrained(str(hf_dir))
    arch, hparams = _architecture(config)
    matrix_type = gguf.GGMLQuantizationType[GGUF_TYPES[quantization][0]]
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), torch_dtype=torch.float32)
    tokens, types, merges, special = _vocabulary(hf_dir, config.vocab_size)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], hparams["block_count"])

    tmp = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_name(hf_dir.parent.name if hf_dir.name == "hf" else hf_dir.name)
    for key, value in hparams.items():
        getattr(writer, f"add_{key}")(value)
    writer.add_file_type(int(getattr(gguf.LlamaFileType, GGUF_TYPES[quantization][1])))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(hf_dir, arch))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    eos = special.get("<|endoftext|>", config.eos_token_id)
    writer.add_bos_token_id(eos)
    writer.add_eos_token_id(eos)
    writer.add_add_bos_token(False)
    template = _chat_template(hf_dir)
    if template:
        writer.add_chat_template(template)

    state = model.state_dict()
    tied = getattr(config, "tie_word_embeddings", True)
    for hf_name, tensor in state.items():
        if hf_name.endswith(_BUFFERS):
            continue
        if hf_name == "lm_head.weight" and tied:
            continue  # llama.cpp reuses token_embd for the output when output.weight is absent
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ConversionError(f"the parameter {hf_name} has no GGUF counterpart in llama.cpp's {arch}.")
        data = tensor.detach().numpy().astype(np.float32)
        kind = matrix_type
        if data.ndim < 2 or name in _KEEP_F32 or data.shape[-1] % 32:
            kind = gguf.GGMLQuantizationType.F32
        packed = gguf.quants.quantize(data, kind)
        writer.add_tensor(name, packed, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=progress)
    writer.close()
    os.replace(tmp, out)
    return out


# GGUF LoRA adapter tensor types
LORA_TYPES = {"f16": "F16", "f32": "F32"}
_PEFT_PREFIX = "base_model.model."


def export_gguf_lora(adapter_dir: str | Path, out: str | Path, *, base_config, dtype: str = "f16") -> Path:
    """Write a peft LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``) as a GGUF
    LoRA adapter for the base model described by ``base_config`` (its Hugging Face config); returns ``out``.

    llama.cpp scales ``B @ A`` by ``adapter.lora.alpha / rank``, peft by ``lora_alpha / r`` (or
    ``/ sqrt(r)`` with rsLoRA, which the written alpha absorbs).

    Raises:
        ConversionError: the adapter uses what a GGUF LoRA cannot hold (DoRA, trained biases or
            whole modules, per-module ranks), or a module has no llama.cpp counterpart.
    """
    import math

    import gguf
    from safetensors.numpy import load_file

    if dtype not in LORA_TYPES:
        raise ConversionError(f"unknown GGUF LoRA type {dtype!r}; choose one of {', '.join(LORA_TYPES)}.")
    adapter_dir, out = Path(adapter_dir), Path(out)
    try:
        settings = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
        tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    except (OSError, ValueError) as exc:
        raise ConversionError(
            f"{adapter_dir} is not a readable peft adapter ({exc}); save it again with save_pretrained."
        ) from None
    unsupported = [
        key for key in ("use_dora", "modules_to_save", "rank_pattern", "alpha_pattern") if settings.get(key)
    ]
    if settings.get("bias", "none") != "none":
        unsupported.append("bias")
    if settings.get("peft_type", "LORA") != "LORA" or unsupported:
        raise ConversionError(
            f"the adapter in {adapter_dir} uses {', '.join(unsupported) or settings.get('peft_type')}, which a "
            "GGUF LoRA adapter cannot hold; train a plain LoRA (ranks and alpha alike on every module)."
        )
    rank = int(settings["r"])
    alpha = float(settings["lora_alpha"])
    if settings.get("use_rslora"):
        alpha *= math.sqrt(rank)
    arch, hparams = _architecture(base_config)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], hparams["block_count"])
    kind = gguf.GGMLQuantizationType[LORA_TYPES[dtype]]

    tmp = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    written = 0
    for key in sorted(tensors):
        if ".lora_B." in key:
            continue
        if ".lora_A." not in key or not key.startswith(_PEFT_PREFIX):
            raise ConversionError(f"{adapter_dir} holds {key}, which is no LoRA matrix; train a plain LoRA.")
        module = key[len(_PEFT_PREFIX) :].split(".lora_A.")[0]
        name = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if name is None:
            raise ConversionError(
                f"the adapted module {module} has no GGUF counterpart in llama.cpp's {arch}."
            )
        lora_a = tensors[key].astype(np.float32)
        lora_b = tensors[key.replace(".lora_A.", ".lora_B.")].astype(np.float32)
        for suffix, data in (("lora_a", lora_a), ("lora_b", lora_b)):
            writer.add_tensor(f"{name}.{suffix}", gguf.quants.quantize(data, kind), raw_dtype=kind)
        written += 1
    if not written:
        raise ConversionError(f"{adapter_dir} holds no LoRA matrices; train the adapter first.")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, out)
    return out


def gguf_file_for(hf_dir: str | Path, quantization: str = "q8_0") -> Path:
    """The GGUF export of ``hf_dir``, from the engine's content-keyed cache (exported on first use)."""
    from engine.convert import checkpoint_key
    from engine.paths import cache_dir

    hf_dir = Path(hf_dir).expanduser().resolve()
    final = (
        cache_dir() / "gguf" / f"{checkpoint_key(hf_dir, 'gguf-' + quantization)[:24]}.{quantization}.gguf"
    )
    if final.is_file():
        return final
    try:
        return export_gguf(hf_dir, final, quantization=quantization)
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(
            f"exporting {hf_dir} to GGUF failed ({exc.__class__.__name__}: {str(exc)[:200]}); "
            "check that the checkpoint loads with transformers."
        ) from exc
