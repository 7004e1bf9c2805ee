"""The transformers backend: the reference the CTranslate2 backend is tested against, and the
fallback for architectures CTranslate2 cannot run.

A manual decoding loop over the model's KV cache: one forward per token, cancellation checked
before every step, sampling through transformers' own logits warpers with a per-request
``torch.Generator`` (so a seed never touches the global RNG).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from engine.backends.tokens import LocalBackend
from engine.errors import BackendUnavailableError, CorruptModelError
from engine.generation import CancelToken, GenerationConfig

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerFast


class HFBackend(LocalBackend):
    """Generation with ``AutoModelForCausalLM`` in float32 (or ``dtype``) on CPU or CUDA."""

    name = "transformers"

    def __init__(
        self,
        model_dir: Path,
        tokenizer: PreTrainedTokenizerFast,
        context_window: int,
        *,
        device: str = "cpu",
        threads: int = 0,
        dtype: str = "float32",
    ) -> None:
        super().__init__(tokenizer, context_window)
        try:
            import torch
            from transformers import AutoModelForCausalLM
        except ImportError as exc:
            raise BackendUnavailableError(
                "torch and transformers are needed for the transformers backend; install them or use --backend ct2."
            ) from exc
        if threads > 0:
            torch.set_num_threads(threads)
        self.device = device
        try:
            model, info = AutoModelForCausalLM.from_pretrained(
                str(model_dir), dtype=getattr(torch, dtype), local_files_only=True, output_loading_info=True
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise CorruptModelError(
                f"transformers cannot load {model_dir} ({exc.__class__.__name__}: {str(exc)[:160]}); "
                "check the checkpoint files."
            ) from None
        # transformers re-initialises weights it could not load instead of failing: refuse that.
        broken = [str(k) for k in (info.get("missing_keys") or [])] + [
            str(k[0] if isinstance(k, tuple) else k) for k in (info.get("mismatched_keys") or [])
        ]
        if broken:
            raise CorruptModelError(
                f"the weights in {model_dir} do not match its config.json ({len(broken)} tensors missing or "
                f"of the wrong shape, e.g. {broken[0]}); restore the checkpoint's original files."
            )
        self.model = model.to(device)
        self.model.eval()

    def _warpers(self, config: GenerationConfig):  # -> LogitsProcessorList
        from transformers import (
            LogitsProcessorList,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        warpers = LogitsProcessorList()
        if not config.greedy:
            warpers.append(TemperatureLogitsWarper(config.temperature))
            if config.top_k:
                warpers.append(TopKLogitsWarper(config.top_k))
            if config.top_p < 1.0:
                warpers.append(TopPLogitsWarper(config.top_p))
        return warpers

    def _pick(
        self,
        logits: torch.Tensor,
        input_ids: torch.Tensor,
        config: GenerationConfig,
        rng: torch.Generator | None,
        allowed: Sequence[int] | None,
    ) -> int:
        import torch

        if allowed is not None:
            mask = torch.full_like(logits, float("-inf"))
            mask[:, list(allowed)] = 0.0
            logits = logits + mask
        if config.greedy:
            return int(torch.argmax(logits, dim=-1)[0])
        scores = self._warpers(config)(input_ids, logits)
        probs = torch.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, 1, generator=rng)[0, 0])

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
        import torch

        rng = None
        if not config.greedy:
            rng = torch.Generator(device=self.device)
            rng.manual_seed(
                config.seed if config.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
            )
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        step_input = input_ids
        past = None
        allowed = first_allowed
        with torch.inference_mode():
            for _ in range(max_new):
                if cancel.cancelled:
                    return
                out = self.model(input_ids=step_input, past_key_values=past, use_cache=True)
                past = out.past_key_values
                token = self._pick(out.logits[:, -1, :].float(), input_ids, config, rng, allowed)
                allowed = None
                if token in self.stop_ids:
                    return
                yield token
                step_input = torch.tensor([[token]], dtype=torch.long, device=self.device)
                input_ids = torch.cat([input_ids, step_input], dim=1)

    def generate_batch(
        self, prompts: Sequence[str], config: GenerationConfig, cancel: CancelToken | None = None
    ) -> list[str]:
        """Continuations of several prompts (one after the other: this is the reference backend)."""
        outputs = []
        for prompt in prompts:
            ids = list(self.generate_ids(self.encode(prompt), config, cancel))
            outputs.append(
                self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            )
        return outputs

    def close(self) -> None:
        """Release the model's memory."""
        self.model = None
