"""CTranslate2 converter loaders the library lacks, registered through its converter API.

ctranslate2 4.8.5 has no loader for ``Starcoder2Config`` and its GPTBigCode loader assumes
multi-query attention. Importing this module registers:

* ``Starcoder2Config``: pre-norm LayerNorm (with bias), rotary embeddings (non-interleaved),
  grouped-query attention, GELU-tanh MLP, optional sliding window;
* ``GPTBigCodeConfig``: the built-in loader, extended to ``multi_query=False`` checkpoints by
  reordering the fused QKV projection from per-head ``[q_h, k_h, v_h]`` blocks to ``[Q; K; V]``,
  and marking multi-query checkpoints so that the runtime keeps one key/value head (below).

Multi-query layout: the built-in loader declares StarCoder's single key/value head as
``num_heads_kv=1``, which the runtime treats as grouped-query attention: it copies that head once
per query head before caching it, so the cache is ``n_head`` times larger and every decoding step
copies it whole to append one position. The runtime still honours a per-layer ``multi_query``
flag, which selects its multi-query layout (time and head dimensions merged, one head cached); the
loader sets it. Same float32 output; int8 decode after a 512-token prompt, same run
(``benchmarks/engine_bench.py``): tiny_starcoder_py shape 40 -> 58 tokens/s, 1.1B shape 7.7 -> 10.3.

Both are verified token for token against transformers in tests/engine/test_convert.py.
"""

from __future__ import annotations

from typing import Any

from ctranslate2.converters import utils
from ctranslate2.converters.transformers import (
    _SUPPORTED_ACTIVATIONS,
    GPTBigCodeMHALoader,
    ModelLoader,
    register_loader,
)
from ctranslate2.specs import common_spec, transformer_spec

from engine.loading import rope_theta


def _vocabulary_with_padding(model: Any, tokens: list[str]) -> list[str]:
    """Pad the tokenizer's vocabulary to the embedding matrix size (checkpoints often round it up)."""
    extra = model.config.vocab_size - len(tokens)
    return tokens + [f"<extra_id_{i}>" for i in range(extra)]


@register_loader("GPTBigCodeConfig")
class GPTBigCodeLoader(GPTBigCodeMHALoader):
    """GPTBigCode with multi-query (StarCoder, SantaCoder) or multi-head attention."""

    # Mark multi-query layers for the runtime's one-head layout (see the module docstring);
    # benchmarks turn it off to measure the library's own conversion.
    merged_multi_query = True

    def get_model_spec(self, model: Any) -> transformer_spec.TransformerDecoderModelSpec:
        config = model.config
        spec = transformer_spec.TransformerDecoderModelSpec.from_config(
            config.n_layer,
            config.n_head,
            pre_norm=True,
            activation=_SUPPORTED_ACTIVATIONS[config.activation_function],
            multi_query_attention=bool(config.multi_query),
        )
        self.set_decoder(spec.decoder, model.transformer)
        for layer_spec in spec.decoder.layer:
            if not config.multi_query:
                self._split_heads_qkv(layer_spec.self_attention.linear[0], config.n_head)
            elif self.merged_multi_query:
                # The spec class accepts no attribute it did not declare; the runtime reads this one.
                object.__setattr__(layer_spec.self_attention, "multi_query", True)
        self.set_linear(spec.decoder.projection, model.lm_head)
        return spec

    @staticmethod
    def _split_heads_qkv(linear: Any, num_heads: int) -> None:
        """Reorder a fused projection from per-head [q_h, k_h, v_h] rows to [Q; K; V] rows."""
        weight = linear.weight
        out_dim = weight.shape[0]
        head_dim = out_dim // (3 * num_heads)
        linear.weight = weight.reshape(num_heads, 3, head_dim, -1).transpose(0, 1).reshape(out_dim, -1)
        bias = getattr(linear, "bias", None)
        if bias is not None and not isinstance(bias, str):
            linear.bias = bias.reshape(num_heads, 3, head_dim).transpose(0, 1).reshape(out_dim)

    def get_vocabulary(self, model: Any, tokenizer: Any) -> list[str]:
        return _vocabulary_with_padding(model, ModelLoader.get_vocabulary(self, model, tokenizer))

    def set_config(self, config: Any, model: Any, tokenizer: Any) -> None:
        super().set_config(config, model, tokenizer)
        config.layer_norm_epsilon = model.config.layer_norm_epsilon


@register_loader("Starcoder2Config")
class Starcoder2Loader(ModelLoader):
    """StarCoder2 (3B/7B/15B and the instruct models)."""

    @property
    def architecture_name(self) -> str:
        return "Starcoder2ForCausalLM"

    def get_model_spec(self, model: Any) -> transformer_spec.TransformerDecoderModelSpec:
        config = model.config
        num_heads = config.num_attention_heads
        num_heads_kv = config.num_key_value_heads
        spec = transformer_spec.TransformerDecoderModelSpec.from_config(
            config.num_hidden_layers,
            num_heads,
            pre_norm=True,
            activation=_SUPPORTED_ACTIVATIONS[config.hidden_act],
            rotary_dim=0,
            rotary_interleave=False,
            rotary_base=rope_theta(config),
            num_heads_kv=None if num_heads_kv == num_heads else num_heads_kv,
            sliding_window=getattr(config, "sliding_window", None) or None,
            head_dim=getattr(config, "head_dim", None) or config.hidden_size // num_heads,
        )
        self.set_decoder(spec.decoder, model.model)
        self.set_linear(spec.decoder.projection, model.lm_head)
        return spec

    def get_vocabulary(self, model: Any, tokenizer: Any) -> list[str]:
        return _vocabulary_with_padding(model, super().get_vocabulary(model, tokenizer))

    def set_vocabulary(self, spec: Any, tokens: list[str]) -> None:
        spec.register_vocabulary(tokens)

    def set_config(self, config: Any, model: Any, tokenizer: Any) -> None:
        config.bos_token = tokenizer.bos_token
        config.eos_token = tokenizer.eos_token
        config.unk_token = tokenizer.unk_token
        config.layer_norm_epsilon = model.config.norm_epsilon

    def set_decoder(self, spec: Any, module: Any) -> None:
        spec.scale_embeddings = False
        self.set_embeddings(spec.embeddings, module.embed_tokens)
        self.set_layer_norm(spec.layer_norm, module.norm)
        for layer_spec, layer in zip(spec.layer, module.layers, strict=True):
            self.set_layer_norm(layer_spec.self_attention.layer_norm, layer.input_layernorm)
            self.set_layer_norm(layer_spec.ffn.layer_norm, layer.post_attention_layernorm)
            qkv = [common_spec.LinearSpec() for _ in range(3)]
            self.set_linear(qkv[0], layer.self_attn.q_proj)
            self.set_linear(qkv[1], layer.self_attn.k_proj)
            self.set_linear(qkv[2], layer.self_attn.v_proj)
            utils.fuse_linear(layer_spec.self_attention.linear[0], qkv)
            self.set_linear(layer_spec.self_attention.linear[1], layer.self_attn.o_proj)
            self.set_linear(layer_spec.ffn.linear_0, layer.mlp.c_fc)
            self.set_linear(layer_spec.ffn.linear_1, layer.mlp.c_proj)


def registered_loaders() -> list[str]:
    """Config class names the converter can handle (after this module's registrations)."""
    from ctranslate2.converters.transformers import _MODEL_LOADERS

    return sorted(_MODEL_LOADERS)
