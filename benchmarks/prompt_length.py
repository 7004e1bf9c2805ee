"""Time to first token by prompt length: CTranslate2 int8 against transformers fp32, in one run.

A completion's first token waits for the whole prompt to go through the model, and a cold prompt
(a file just opened, the cursor moved far) cannot be cancelled midway. This measures how that
wait grows with the prompt, for random-weight models of two shapes (no download):

* ``embedded``: the embedded default model's shape (``models/stackcoder-mini``: 4 layers,
  n_embd 192, vocabulary 8192) with a 4096-token window instead of its 512;
* ``tiny_starcoder_py``: n_embd 768, 20 layers, multi-query (as ``engine_bench.py``).

Each backend runs at 1 and 2 threads; the prompt is the start of the standard library's
``textwrap.py``. The table gives the median time to the first token and transformers' time
divided by CTranslate2's (above 1: CTranslate2 is faster), llama.cpp's time (Q8_0, through the
engine's llamacpp backend, with flash attention as the product runs it and without, when the
[llama] extra is installed), plus the share of the prompt's
multiply-adds spent in attention scores (n x n per layer, as CTranslate2 computes them whole).

    .venv/bin/python benchmarks/prompt_length.py
    .venv/bin/python benchmarks/prompt_length.py --shapes embedded --lengths 256 512 1024
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

from engine_bench import model_dir, prompt_ids, time_stream  # noqa: E402
from helpers.tiny_models import build_model  # noqa: E402

EMBEDDED = REPO / "models" / "stackcoder-mini" / "hf"
WINDOW = 4096


def embedded_shape_dir() -> Path:
    """A random-weight checkpoint of the embedded model's shape with a ``WINDOW``-token window."""
    final = Path(tempfile.gettempdir()) / "stackcoder-bench-models" / f"embedded-{WINDOW}"
    if (final / "model.safetensors").exists():
        return final
    config = json.loads((EMBEDDED / "config.json").read_text())
    fields = {k: config[k] for k in ("n_embd", "n_layer", "n_head", "multi_query", "n_inner") if k in config}
    print(f"building random embedded shape {fields} ...", file=sys.stderr)
    build_model(final, "gpt_bigcode", tokenizer_dir=EMBEDDED, n_positions=WINDOW, **fields)
    return final


def attention_share(config: dict, length: int) -> float:
    """Share of a prompt's multiply-adds in attention scores and their use (n x n per layer)."""
    d = config["n_embd"]
    inner = config.get("n_inner") or 4 * d
    head_dim = d // config["n_head"]
    kv = 2 * head_dim if config.get("multi_query", True) else 2 * d
    linear = d * (d + kv) + d * d + 2 * d * inner  # qkv, output projection, MLP
    attention = 2 * length * d  # q.k over every position, then the weighted sum of values
    return attention / (attention + linear)


def measure(shape: str, hf_dir: Path, lengths: list[int], threads: list[int], repeats: int) -> list[dict]:
    from engine.backends.ct2 import CT2Backend
    from engine.backends.hf import HFBackend
    from engine.backends.llamacpp import LlamaCppBackend, llama_cpp_available
    from engine.convert import convert_checkpoint
    from engine.gguf_export import gguf_file_for
    from engine.loading import inspect_hf, load_tokenizer

    source = inspect_hf(hf_dir)
    tokenizer = load_tokenizer(hf_dir)
    config = json.loads((hf_dir / "config.json").read_text())
    longest = prompt_ids(tokenizer, max(lengths))
    ct2_dir = convert_checkpoint(hf_dir, quantization="int8")
    rows = []
    for count in threads:
        backends = {
            "transformers fp32": HFBackend(hf_dir, tokenizer, source.context_window, threads=count),
            "ct2 int8": CT2Backend(
                ct2_dir, tokenizer, source.context_window, threads=count, static_prompt=False
            ),
        }
        if llama_cpp_available():  # the [llama] extra
            gguf = gguf_file_for(hf_dir)
            window = source.context_window
            backends["llama.cpp q8_0"] = LlamaCppBackend(gguf, tokenizer, window, threads=count)
            backends["llama.cpp q8_0 plain attention"] = LlamaCppBackend(
                gguf, tokenizer, window, threads=count, flash_attention=False
            )
        times: dict[tuple[str, int], float] = {}
        for label, backend in backends.items():
            backend.stop_ids = ()  # random weights may emit EOS
            time_stream(backend, longest[:32], 2, 1)  # warm-up
            for length in lengths:
                ttft, _ = time_stream(backend, longest[:length], 2, repeats)
                times[label, length] = ttft * 1000
                print(
                    f"  {shape} {label} {count} threads {length} tokens: {ttft * 1000:.1f} ms",
                    file=sys.stderr,
                )
            backend.close()
        del backends
        gc.collect()
        for length in lengths:
            hf, ct2 = times["transformers fp32", length], times["ct2 int8", length]
            rows.append(
                {
                    "shape": shape,
                    "threads": count,
                    "tokens": length,
                    "hf_ms": hf,
                    "ct2_ms": ct2,
                    "llama_ms": times.get(("llama.cpp q8_0", length)),
                    "llama_plain_ms": times.get(("llama.cpp q8_0 plain attention", length)),
                    "attention": attention_share(config, length),
                }
            )
    return rows


def print_table(rows: list[dict]) -> None:
    print(
        "| shape | threads | prompt tokens | transformers fp32 ms | ct2 int8 ms | ct2 speed-up "
        "| llama.cpp q8_0 ms (flash / plain attention) | attention share |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        llama = "-" if r["llama_ms"] is None else f"{r['llama_ms']:.1f} / {r['llama_plain_ms']:.1f}"
        print(
            f"| {r['shape']} | {r['threads']} | {r['tokens']} | {r['hf_ms']:.1f} | {r['ct2_ms']:.1f} "
            f"| {r['hf_ms'] / r['ct2_ms']:.2f}x | {llama} | {r['attention']:.0%} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", nargs="+", default=["embedded", "tiny_starcoder_py"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load = os.getloadavg()
    rows = []
    for shape in args.shapes:
        hf_dir = embedded_shape_dir() if shape == "embedded" else model_dir(shape)
        rows += measure(shape, hf_dir, args.lengths, args.threads, args.repeats)
    print(
        f"\ntime to first token (median of {args.repeats}), greedy; load average at start "
        f"{load[0]:.2f}, at end {os.getloadavg()[0]:.2f}\n"
    )
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
