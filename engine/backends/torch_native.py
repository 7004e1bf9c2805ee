"""The PyTorch backend: small GPTBigCode models (the embedded default) at their fastest on a CPU.

A compact GPTBigCode forward pass over the checkpoint's own tensors, in the spirit of gpt-fast:
no framework layers, a preallocated key/value cache, PyTorch's kernels for the arithmetic.
Measured facts it relies on (``benchmarks/cold_prompt.py``, 2 cores with AMX):

* the prompt runs in bfloat16: oneDNN's bf16 matrix kernels and PyTorch's causal flash attention
  take a 1,000-token prompt of the embedded model through in ~15 ms, where CTranslate2 (int8
  matrices, float32 attention over the whole n x n score matrix) needs ~35 ms;
* decoding runs in float32, one token per step: a step's matrices are one row, operator overhead
  decides, and float32 steps are faster than bfloat16 ones there;
* the prompt's last token is run as a float32 step, so every logit the sampler sees comes from
  the same float32 arithmetic, whatever part of the prompt was cached;
* each request slot keeps the token ids its cache holds: a request sharing a prompt head with a
  slot (SPM prompts: typing only appends) runs only its new tokens, and a prompt is processed in
  chunks, so a cancel lands between chunks instead of after the whole prompt.

Its decoding steps are slower than CTranslate2's (~0.6-0.8 ms against ~0.46 on the embedded
model: a Python loop of ~70 operators over float32 weights), and two of its requests side by side
slow each other down. So the ``auto`` backend (``engine.backends.routed``) gives it only the
completions whose prompt is new to the engine. ``should_use`` says when that pays: GPTBigCode
checkpoints small enough for operator overhead and attention to dominate, on CPUs with bfloat16
matrix instructions; larger models stay on CTranslate2 (int8 weights: a quarter of the memory
traffic of float32 per step).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.backends.sampling import sample_from_logits
from engine.backends.tokens import LocalBackend
from engine.errors import BackendUnavailableError, CorruptModelError, UnsupportedModelError
from engine.generation import CancelToken, GenerationConfig

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerFast

# GELU variants GPTBigCode configs name, and PyTorch's ``approximate`` argument for each.
GELU_APPROXIMATIONS = {"gelu_pytorch_tanh": "tanh", "gelu_new": "tanh", "gelu_fast": "tanh", "gelu": "none"}
# Checkpoints up to this many parameters are served by this backend when ``should_use`` picks.
MAX_AUTO_PARAMETERS = 60_000_000
# A cancel is checked between chunks of a long prompt; a chunk after the first attends through an
# explicit mask, which PyTorch's CPU attention runs slower (1,000 tokens of the embedded model:
# 15 ms in one chunk, 19 ms in chunks of 512, 25 ms in chunks of 256).
PROMPT_CHUNK_TOKENS = 1024
# Prompt passes run on token counts padded to a multiple of this: oneDNN builds its bf16 kernels
# per shape and PyTorch's attention prepares per length, which costs more than the pass itself
# (a 1,000-token linear layer: 2.3 ms the first time at a length, 0.25 ms after; attention
# 8-13 ms against 1.2 ms), so a prompt of a new length must not mean new shapes.
SHAPE_BUCKET = 64
# At most this many new tokens before the last run as float32 steps rather than a padded prompt
# pass (typing adds a token or two: 0.6 ms a step against ~4 ms for a masked 64-token pass).
STEP_TOKENS = 4


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def bf16_matmul_supported() -> bool:
    """Whether this CPU has bfloat16 matrix instructions (AMX tiles or AVX-512 BF16)."""
    import torch

    cpu = torch.cpu
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(cpu, probe, None)
        if check is not None and check():
            return True
    return False


def _config(hf_dir: Path) -> dict[str, Any]:
    from engine.loading import _read_json

    return _read_json(hf_dir / "config.json", "config.json")


def parameter_count(config: dict[str, Any]) -> int:
    """Parameters of a GPTBigCode config (tied embeddings counted once)."""
    d, layers, vocab = config["n_embd"], config["n_layer"], config["vocab_size"]
    inner = config.get("n_inner") or 4 * d
    kv = 2 * (d // config["n_head"]) if config.get("multi_query", True) else 2 * d
    linears = (d + 1) * (d + kv) + (d + 1) * d + (d + 1) * inner + (inner + 1) * d  # weights and biases
    per_layer = linears + 4 * d  # and two layer norms
    return vocab * d + config.get("n_positions", 0) * d + layers * per_layer + 2 * d


def should_use(hf_dir: Path | None, family: str, device: str) -> bool:
    """Whether ``auto`` picks this backend: a small GPTBigCode checkpoint on a bf16-capable CPU."""
    if hf_dir is None or family != "gpt_bigcode" or device != "cpu":
        return False
    try:
        config = _config(hf_dir)
        small = parameter_count(config) <= MAX_AUTO_PARAMETERS
    except (CorruptModelError, KeyError, TypeError):
        return False
    return (
        small
        and config.get("activation_function", "gelu_pytorch_tanh") in GELU_APPROXIMATIONS
        and bf16_matmul_supported()
    )


@dataclass
class _Layer:
    """One transformer block's tensors in one dtype."""

    ln_1: tuple[torch.Tensor, torch.Tensor]
    attn: tuple[torch.Tensor, torch.Tensor]
    attn_proj: tuple[torch.Tensor, torch.Tensor]
    ln_2: tuple[torch.Tensor, torch.Tensor]
    fc: tuple[torch.Tensor, torch.Tensor]
    fc_proj: tuple[torch.Tensor, torch.Tensor]


@dataclass
class _Weights:
    """The checkpoint's tensors in one dtype."""

    wte: torch.Tensor
    wpe: torch.Tensor
    layers: list[_Layer]
    ln_f: tuple[torch.Tensor, torch.Tensor]
    lm_head: torch.Tensor


class _Slot:
    """A key/value cache for one request at a time, and the token ids whose state it holds."""

    def __init__(self, layers: int, kv_heads: int, window: int, head_dim: int) -> None:
        import torch

        self.keys = [torch.zeros(kv_heads, window, head_dim) for _ in range(layers)]
        self.values = [torch.zeros(kv_heads, window, head_dim) for _ in range(layers)]
        self.ids: list[int] = []

    def shared_head(self, ids: Sequence[int]) -> int:
        """How many leading tokens of ``ids`` this slot's cache already holds (list slices compare
        in C: a binary search over prefixes costs microseconds on a 1,000-token prompt)."""
        n = min(len(self.ids), len(ids))
        wanted = list(ids[:n])
        if self.ids[:n] == wanted:
            return n
        same, differs = 0, n  # the first ``same`` tokens match; the first ``differs`` do not
        while differs - same > 1:
            middle = (same + differs) // 2
            if self.ids[:middle] == wanted[:middle]:
                same = middle
            else:
                differs = middle
        return same


def _load_tensors(hf_dir: Path) -> dict[str, torch.Tensor]:
    import torch
    from safetensors.torch import load_file

    from engine.loading import _weight_files

    tensors: dict[str, torch.Tensor] = {}
    try:
        for shard in _weight_files(hf_dir):
            if shard.suffix == ".safetensors":
                tensors.update(load_file(str(shard)))
            else:
                tensors.update(torch.load(shard, map_location="cpu", weights_only=True))
    except Exception as exc:  # safetensors and torch raise many types for a broken file
        raise CorruptModelError(
            f"the weights in {hf_dir} cannot be read ({exc.__class__.__name__}: {str(exc)[:120]}); "
            "re-export the checkpoint."
        ) from None
    if not tensors:
        raise CorruptModelError(f"{hf_dir} has no weights (model.safetensors); re-export the checkpoint.")
    return {name.removeprefix("transformer."): t for name, t in tensors.items()}


class TorchBackend(LocalBackend):
    """Generation for GPTBigCode checkpoints with a compact PyTorch forward pass (see the module)."""

    name = "torch"

    def __init__(
        self,
        hf_dir: Path,
        tokenizer: PreTrainedTokenizerFast,
        context_window: int,
        *,
        threads: int = 0,
        prompt_dtype: str | None = None,
        parallel_requests: int = 2,
        chunk_tokens: int = PROMPT_CHUNK_TOKENS,
    ) -> None:
        super().__init__(tokenizer, context_window)
        try:
            import torch
        except ImportError as exc:
            raise BackendUnavailableError(
                "torch is needed for the torch backend; install it or use --backend ct2."
            ) from exc
        self.hf_dir = Path(hf_dir)
        config = _config(self.hf_dir)
        if config.get("model_type") != "gpt_bigcode":
            raise UnsupportedModelError(
                f"the torch backend runs GPTBigCode checkpoints, not {config.get('model_type')!r}; "
                "use --backend ct2."
            )
        activation = config.get("activation_function", "gelu_pytorch_tanh")
        if activation not in GELU_APPROXIMATIONS:
            raise UnsupportedModelError(
                f"the torch backend does not implement the activation {activation!r}; use --backend ct2."
            )
        self.threads = threads or os.cpu_count() or 1
        self._gelu = GELU_APPROXIMATIONS[activation]
        self.n_embd, self.n_layer, self.n_head = config["n_embd"], config["n_layer"], config["n_head"]
        self.head_dim = self.n_embd // self.n_head
        self.multi_query = bool(config.get("multi_query", True))
        self.kv_heads = 1 if self.multi_query else self.n_head
        self.eps = float(config.get("layer_norm_epsilon", 1e-5))
        self.scale = self.head_dim**-0.5 if config.get("scale_attn_weights", True) else 1.0
        self.context_window = min(context_window, int(config.get("n_positions", context_window)))
        if prompt_dtype is None:
            prompt_dtype = "bfloat16" if bf16_matmul_supported() else "float32"
        if prompt_dtype not in ("bfloat16", "float32"):
            raise BackendUnavailableError(
                f"the torch backend runs prompts in bfloat16 or float32, not {prompt_dtype}."
            )
        self.prompt_dtype = prompt_dtype
        tensors = _load_tensors(self.hf_dir)
        self._step_weights = self._weights(tensors, config, torch.float32, transposed=True)
        self._prompt_weights = self._weights(tensors, config, getattr(torch, prompt_dtype))
        self.chunk_tokens = max(1, chunk_tokens)
        self.parallel_requests = max(1, parallel_requests)
        self._slots: list[_Slot] = []
        self._free: list[_Slot] = []
        self._slots_changed = threading.Condition()
        self._in_flight = 0  # requests holding a slot
        self._thread_setting = threading.local()  # the torch threads this OS thread was set to
        self.reused_tokens = 0  # prompt tokens whose state came from a slot's cache (for benchmarks)
        self.computed_tokens = 0  # prompt tokens run through the model

    # ------------------------------------------------------------------ weights

    def _weights(
        self,
        tensors: dict[str, torch.Tensor],
        config: dict[str, Any],
        dtype: torch.dtype,
        *,
        transposed: bool = False,
    ) -> _Weights:
        """The checkpoint's tensors in ``dtype``, shapes checked against ``config``; matrices
        stored (in, out) when ``transposed`` (a one-row step multiplies those fastest), and the
        attention scale folded into the query rows."""
        d, inner = self.n_embd, config.get("n_inner") or 4 * self.n_embd
        qkv = d + 2 * self.kv_heads * self.head_dim
        vocab = config["vocab_size"]

        def get(name: str, *shape: int) -> torch.Tensor:
            tensor = tensors.get(name)
            if tensor is None or tuple(tensor.shape) != shape:
                found = "missing" if tensor is None else f"of shape {tuple(tensor.shape)}"
                raise CorruptModelError(
                    f"the weights in {self.hf_dir} do not match its config.json ({name} is {found}, "
                    f"expected {shape}); restore the checkpoint's original files."
                )
            return tensor.float()

        def pair(prefix: str, out: int, inp: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
            weight = get(f"{prefix}.weight", out) if inp is None else get(f"{prefix}.weight", out, inp)
            bias = get(f"{prefix}.bias", out)
            if prefix.endswith("c_attn"):
                weight, bias = self._scaled_queries(weight), self._scaled_queries(bias)
            if inp is not None and transposed:
                weight = weight.t()
            return weight.to(dtype).contiguous(), bias.to(dtype).contiguous()

        layers = [
            _Layer(
                ln_1=pair(f"h.{i}.ln_1", d),
                attn=pair(f"h.{i}.attn.c_attn", qkv, d),
                attn_proj=pair(f"h.{i}.attn.c_proj", d, d),
                ln_2=pair(f"h.{i}.ln_2", d),
                fc=pair(f"h.{i}.mlp.c_fc", inner, d),
                fc_proj=pair(f"h.{i}.mlp.c_proj", d, inner),
            )
            for i in range(self.n_layer)
        ]
        wte = get("wte.weight", vocab, d)
        tied = config.get("tie_word_embeddings", True) or "lm_head.weight" not in tensors
        lm_head = wte if tied else get("lm_head.weight", vocab, d)
        return _Weights(
            wte=wte.to(dtype).contiguous(),
            wpe=get("wpe.weight", config.get("n_positions", self.context_window), d).to(dtype).contiguous(),
            layers=layers,
            ln_f=pair("ln_f", d),
            lm_head=(lm_head.t() if transposed else lm_head).to(dtype).contiguous(),
        )

    def _scaled_queries(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` (c_attn's weight or bias) with its query rows times the attention scale."""
        if self.scale == 1.0:
            return tensor
        scaled = tensor.clone()
        if self.multi_query:  # rows: all queries, then the key and the value
            scaled[: self.n_embd] *= self.scale
        else:  # rows per head: query, key, value
            per_head = scaled.view(self.n_head, 3 * self.head_dim, *scaled.shape[1:])
            per_head[:, : self.head_dim] *= self.scale
        return scaled

    # ------------------------------------------------------------------ the forward pass

    def _run(self, weights: _Weights, slot: _Slot, ids: Sequence[int], start: int) -> None:
        """Run prompt tokens ``ids`` at positions ``start``.. through the model, writing their
        keys and values into ``slot`` (no logits: the prompt's last token is a ``_decode`` step)."""
        import torch
        import torch.nn.functional as F

        # Shapes are padded to multiples of SHAPE_BUCKET tokens (see there); padding tokens come
        # after the real ones, so causal attention keeps them out of the real tokens' results,
        # and their keys and values, written past the slot's ids, are overwritten before use.
        d, real = self.n_embd, len(ids)
        count = min(_round_up(real, SHAPE_BUCKET), self.context_window - start)
        end = start + count
        x = weights.wte[torch.tensor([*ids, *[0] * (count - real)])] + weights.wpe[start:end]
        mask, keys_end = None, end
        if start > 0:  # the new tokens see the cached head and, causally, each other
            keys_end = min(_round_up(end, SHAPE_BUCKET), self.context_window)
            rows = torch.arange(start, end).unsqueeze(1)
            mask = torch.arange(keys_end).unsqueeze(0) <= rows
        for index, layer in enumerate(weights.layers):
            h = F.layer_norm(x, (d,), *layer.ln_1, self.eps)
            qkv = F.linear(h, *layer.attn)
            if self.multi_query:
                q = qkv[:, :d].view(count, self.n_head, self.head_dim).transpose(0, 1)
                k, v = qkv[:, d:].split(self.head_dim, dim=-1)
                k, v = k.unsqueeze(0), v.unsqueeze(0)
            else:
                q, k, v = (
                    qkv.view(count, self.n_head, 3 * self.head_dim).transpose(0, 1).split(self.head_dim, -1)
                )
            slot.keys[index][:, start:end] = k
            slot.values[index][:, start:end] = v
            keys = slot.keys[index][:, :keys_end].to(x.dtype)
            values = slot.values[index][:, :keys_end].to(x.dtype)
            if self.multi_query:
                keys, values = keys.expand(self.n_head, -1, -1), values.expand(self.n_head, -1, -1)
            attended = F.scaled_dot_product_attention(  # 4-D: the flash kernel's layout
                q[None], keys[None], values[None], attn_mask=mask, is_causal=mask is None, scale=1.0
            )[0]
            x = x + F.linear(attended.transpose(0, 1).reshape(count, d), *layer.attn_proj)
            h = F.layer_norm(x, (d,), *layer.ln_2, self.eps)
            x = x + F.linear(F.gelu(F.linear(h, *layer.fc), approximate=self._gelu), *layer.fc_proj)
        del slot.ids[start:]
        slot.ids.extend(ids)

    def _decode(self, slot: _Slot, token: int, logits: bool = True) -> np.ndarray | None:
        """Run one token (float32) after the tokens ``slot`` holds; return its logits (when
        ``logits``)."""
        import torch
        import torch.nn.functional as F

        weights, d, hd, pos = self._step_weights, self.n_embd, self.head_dim, len(slot.ids)
        x = (weights.wte[token] + weights.wpe[pos]).unsqueeze(0)
        for index, layer in enumerate(weights.layers):
            qkv = torch.addmm(layer.attn[1], F.layer_norm(x, (d,), *layer.ln_1, self.eps), layer.attn[0])
            if self.multi_query:
                slot.keys[index][0, pos] = qkv[0, d : d + hd]
                slot.values[index][0, pos] = qkv[0, d + hd :]
                keys, values = slot.keys[index][0, : pos + 1], slot.values[index][0, : pos + 1]
                scores = torch.mm(qkv[0, :d].view(self.n_head, hd), keys.t())
                attended = torch.mm(torch.softmax(scores, dim=-1), values)
            else:
                q, k, v = qkv.view(self.n_head, 1, 3 * hd).split(hd, -1)
                slot.keys[index][:, pos : pos + 1] = k
                slot.values[index][:, pos : pos + 1] = v
                keys, values = slot.keys[index][:, : pos + 1], slot.values[index][:, : pos + 1]
                scores = torch.matmul(q, keys.transpose(1, 2))
                attended = torch.matmul(torch.softmax(scores, dim=-1), values)
            x = torch.addmm(layer.attn_proj[1], attended.view(1, d), layer.attn_proj[0]).add_(x)
            h = torch.addmm(layer.fc[1], F.layer_norm(x, (d,), *layer.ln_2, self.eps), layer.fc[0])
            x = torch.addmm(layer.fc_proj[1], F.gelu(h, approximate=self._gelu), layer.fc_proj[0]).add_(x)
        slot.ids.append(token)
        if not logits:
            return None
        return torch.mm(F.layer_norm(x, (d,), *weights.ln_f, self.eps), weights.lm_head)[0].numpy()

    def _prompt(self, slot: _Slot, ids: Sequence[int], cancel: CancelToken) -> np.ndarray | None:
        """Bring ``slot`` to hold ``ids`` (reusing its shared head) and return the logits after
        them, or None when cancelled between chunks."""
        import torch

        start = min(slot.shared_head(ids), len(ids) - 1)
        if start < len(ids) - 1 - start:
            # A short shared head is not worth its cost: new tokens after a cached head attend
            # through an explicit mask, slower than the causal kernel over the whole prompt.
            start = 0
        self.reused_tokens += start
        self.computed_tokens += len(ids) - start
        with torch.inference_mode():
            del slot.ids[start:]
            if len(ids) - 1 - start <= STEP_TOKENS:  # a keystroke's few new tokens: steps
                for token in ids[start:-1]:
                    self._decode(slot, token, logits=False)
            # all but the last token in the prompt dtype (their keys and values only) ...
            for chunk in range(len(slot.ids), len(ids) - 1, self.chunk_tokens):
                if cancel.cancelled:
                    return None
                stop = min(chunk + self.chunk_tokens, len(ids) - 1)
                self._run(self._prompt_weights, slot, ids[chunk:stop], chunk)
            # ... and the last one as a float32 step, like every generated token
            return self._decode(slot, ids[-1])

    def _step(self, slot: _Slot, token: int) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self._decode(slot, token)

    def warm_shapes(self, max_tokens: int = 2048) -> float | None:
        """Run a prompt of every padded length up to ``max_tokens`` once, in a scratch slot, so
        that no request pays for oneDNN building kernels for a new shape (a first prompt at a
        length costs 8-30 ms more on the embedded model). Returns the seconds it took."""
        import time

        import torch

        started = time.perf_counter()
        slot = _Slot(self.n_layer, self.kv_heads, self.context_window, self.head_dim)
        with torch.inference_mode():
            for length in range(SHAPE_BUCKET, min(self.context_window, max_tokens) + 1, SHAPE_BUCKET):
                self._run(self._prompt_weights, slot, [0] * length, 0)
        return time.perf_counter() - started

    # ------------------------------------------------------------------ slots

    def _acquire(self, ids: Sequence[int]) -> _Slot:
        """The free slot sharing the longest head with ``ids`` (a new one while there are fewer
        than ``parallel_requests``); waits while every slot is busy."""
        with self._slots_changed:
            while not self._free and len(self._slots) >= self.parallel_requests:
                self._slots_changed.wait()
            self._in_flight += 1
            if self._free:
                slot = max(self._free, key=lambda s: s.shared_head(ids))
                if slot.shared_head(ids) == 0 and len(self._slots) < self.parallel_requests:
                    slot = self._new_slot()
                else:
                    self._free.remove(slot)
                return slot
            return self._new_slot()

    def cached_tokens(self, ids: Sequence[int]) -> int:
        """How many leading tokens of ``ids`` the best free slot already holds."""
        with self._slots_changed:
            return max((slot.shared_head(ids) for slot in self._free), default=0)

    def _new_slot(self) -> _Slot:
        slot = _Slot(self.n_layer, self.kv_heads, self.context_window, self.head_dim)
        self._slots.append(slot)
        return slot

    def _release(self, slot: _Slot) -> None:
        with self._slots_changed:
            self._in_flight -= 1
            self._free.append(slot)
            self._slots_changed.notify()

    def _share_cores(self) -> None:
        """Run this request on every thread while it runs alone and on an equal share of them
        beside others (PyTorch's thread count is per OS thread, and each thread that computes
        brings its own OpenMP team). Requests side by side still slow each other down more than
        CTranslate2's C++ workers do (``benchmarks/chat_and_completions.py``: a 24-token
        completion during a chat answer 50 ms instead of 24, the answer 2.5 times as long)."""
        import torch

        wanted = max(1, self.threads // max(1, self._in_flight))
        if getattr(self._thread_setting, "threads", None) != wanted:
            torch.set_num_threads(wanted)
            self._thread_setting.threads = wanted

    # ------------------------------------------------------------------ generation

    def decode_ids(
        self,
        ids: list[int],
        config: GenerationConfig,
        cancel: CancelToken,
        max_new: int,
        *,
        first_allowed: Sequence[int] | None,
        prompt: Sequence[int] | None,
    ) -> Iterator[int]:
        """Yield generated ids; see ``LocalBackend.decode_ids``."""
        if not ids:
            return
        rng = np.random.default_rng(config.seed)
        slot = self._acquire(ids)
        try:
            self._share_cores()
            logits = self._prompt(slot, ids, cancel)
            allowed = first_allowed
            for produced in range(max_new):
                if logits is None or cancel.cancelled:
                    return
                token = sample_from_logits(logits, allowed, config, rng)
                allowed = None
                if token in self.stop_ids:
                    return
                yield token
                if produced + 1 < max_new:  # the budget keeps every step inside the window
                    self._share_cores()
                    logits = self._step(slot, token)
        finally:
            self._release(slot)

    def close(self) -> None:
        """Release the model's memory."""
        self._slots.clear()
        self._free.clear()
