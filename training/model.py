"""GPTBigCode model configurations (multi-query attention, as StarCoder) and their construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from training.errors import ConfigError, ResourceError

__all__ = ["ModelConfig", "PRESETS", "preset", "build_model", "count_parameters", "check_memory"]


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a GPTBigCode model."""

    n_layer: int = 4  # transformer blocks
    n_embd: int = 256  # hidden size
    n_head: int = 4  # query heads (one shared key/value head: multi-query attention)
    n_positions: int = 1024  # longest sequence (learned absolute positions)
    vocab_size: int = 8192  # tokenizer size (rounded up to a multiple of 64 when built)
    n_inner: int | None = None  # MLP width; None = 4 * n_embd
    dropout: float = 0.0  # residual, embedding and attention dropout

    def validate(self) -> None:
        """Raise ConfigError naming the field to fix."""
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}; change --n-head or --n-embd."
            )
        for name in ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive; fix the model configuration.")


# Named sizes; the parameter counts in the comments are for an 8k vocabulary.
PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(n_layer=2, n_embd=64, n_head=2, n_positions=256),  # tests (0.6M parameters)
    "3m": ModelConfig(n_layer=4, n_embd=192, n_head=3),  # 3.4M
    "6m": ModelConfig(n_layer=6, n_embd=256, n_head=4),  # 6.5M
    "11m": ModelConfig(n_layer=8, n_embd=320, n_head=5),  # 11.5M
    "20m": ModelConfig(n_layer=8, n_embd=448, n_head=7),  # 20.7M
}


def preset(name: str) -> ModelConfig:
    """The preset of that name; unknown names list the known ones."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model size {name!r}; choose one of {', '.join(PRESETS)}.")
    return PRESETS[name]


def hf_config(cfg: ModelConfig, *, bos_id: int = 0, eos_id: int = 0):
    """The transformers GPTBigCodeConfig of a model configuration."""
    from transformers import GPTBigCodeConfig

    cfg.validate()
    vocab = (cfg.vocab_size + 63) // 64 * 64
    return GPTBigCodeConfig(
        vocab_size=vocab,
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_inner=cfg.n_inner,
        multi_query=True,
        activation_function="gelu_pytorch_tanh",
        resid_pdrop=cfg.dropout,
        embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        scale_attn_weights=True,
        tie_word_embeddings=True,
        use_cache=True,
    )


def build_model(cfg: ModelConfig):
    """A randomly initialised GPTBigCodeForCausalLM using PyTorch's sdpa attention."""
    from transformers import GPTBigCodeForCausalLM

    return GPTBigCodeForCausalLM._from_config(hf_config(cfg), attn_implementation="sdpa")


def count_parameters(model) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def check_memory(cfg: ModelConfig, micro_batch: int, seq_len: int, available: int | None = None) -> int:
    """Estimate training memory in bytes; raise ResourceError when it exceeds what is available."""
    import psutil

    d, layers, vocab = cfg.n_embd, cfg.n_layer, (cfg.vocab_size + 63) // 64 * 64
    inner = cfg.n_inner or 4 * d
    params = (
        vocab * d + cfg.n_positions * d + layers * (d * d * 2 + 2 * d * (d // cfg.n_head) + 2 * d * inner)
    )
    tokens = micro_batch * seq_len
    # weights + grads + two AdamW moments in fp32; activations kept for backward (fp32 upper bound);
    # logits and their gradient.
    activations = tokens * layers * (16 * d + 2 * inner) * 4 + tokens * vocab * 4 * 3
    need = params * 16 + activations
    available = psutil.virtual_memory().available if available is None else available
    if need > available:
        raise ResourceError(
            f"this configuration needs about {need / 2**30:.1f} GiB but {available / 2**30:.1f} GiB are free; "
            "lower --micro-batch or --seq-len or pick a smaller --size."
        )
    return need


def describe(cfg: ModelConfig) -> dict:
    """The configuration as a plain dict (for logs and cards)."""
    return asdict(cfg)
