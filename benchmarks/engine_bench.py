"""Engine speed: transformers float32 (the baseline) vs CTranslate2 float32 and int8, in one run.

Random-weight models of real shapes (no download): the tiny_starcoder_py shape (GPTBigCode,
n_embd 768, 20 layers, 12 heads, multi-query, vocab 49152) and a larger one (``--large``: a ~1.1B
GPTBigCode of the SantaCoder shape by default, or the StarCoder2-3B shape, which needs ~30 GB of
RAM to build and convert). A 512-token prompt (the start of the standard library's textwrap.py),
64 new tokens, greedy, ``--threads`` threads. For each backend: time to first token, decode
tokens/s, batch-4 throughput, and the decode bound from memory bandwidth (weight bytes read per
token / measured copy bandwidth). GPTBigCode shapes also run int8 as ctranslate2's own loader
converts them ("kv copied": the multi-query key/value head copied per query head in the cache;
the engine's loader keeps one). When llama-cpp-python is installed (the ``[llama]`` extra), the
GPTBigCode shapes are also run through the engine's llama.cpp backend (Q8_0) for comparison.

    .venv/bin/python benchmarks/engine_bench.py                 # tiny_starcoder_py + 1.1B
    .venv/bin/python benchmarks/engine_bench.py --large none    # tiny_starcoder_py only
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import tempfile
import textwrap as textwrap_module
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from helpers.tiny_models import build_model  # noqa: E402

# name -> (family, config fields); vocab 49152 like the StarCoder tokenizer.
SHAPES: dict[str, tuple[str, dict]] = {
    "tiny_starcoder_py": (
        "gpt_bigcode",
        {
            "n_embd": 768,
            "n_layer": 20,
            "n_head": 12,
            "multi_query": True,
            "n_positions": 8192,
            "initializer_range": 0.02,
        },
    ),
    "gptbigcode-1.1b": (
        "gpt_bigcode",
        {
            "n_embd": 2048,
            "n_layer": 24,
            "n_head": 16,
            "n_inner": 8192,
            "multi_query": True,
            "n_positions": 8192,
            "initializer_range": 0.02,
        },
    ),
    "starcoder2-3b": (
        "starcoder2",
        {
            "hidden_size": 3072,
            "intermediate_size": 12288,
            "num_hidden_layers": 30,
            "num_attention_heads": 24,
            "num_key_value_heads": 2,
            "max_position_embeddings": 16384,
            "initializer_range": 0.018,
        },
    ),
}
VOCAB = 49152


def model_dir(shape: str) -> Path:
    """Build (once) and return the random-weight checkpoint of ``shape``."""
    root = Path(tempfile.gettempdir()) / "stackcoder-bench-models"
    final = root / shape
    if (final / "model.safetensors").exists() or list(final.glob("model-*.safetensors")):
        return final
    family, fields = SHAPES[shape]
    staging = root / f".{shape}.partial"
    if staging.exists():
        import shutil

        shutil.rmtree(staging)  # an interrupted build
    print(f"building random {shape} ({family}) ...", file=sys.stderr)
    build_model(staging, family, vocab_size=VOCAB, **fields)
    staging.rename(final)
    return final


def copy_bandwidth(threads: int) -> float:
    """Best copy bandwidth in bytes/s (read + write counted) of a 1 GiB buffer with ``threads``."""
    import torch

    torch.set_num_threads(threads)
    src = torch.ones(256 * 1024 * 1024, dtype=torch.float32)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    nbytes = src.numel() * 4
    del src, dst
    return 2 * nbytes / best


def prompt_ids(tokenizer, length: int, offset: int = 0) -> list[int]:
    text = Path(textwrap_module.__file__).read_text() * 4
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[offset : offset + length]


def time_stream(backend, ids: list[int], new_tokens: int, repeats: int) -> tuple[float, float]:
    """Median time to first token (s) and median decode rate (tokens/s after the first)."""
    from engine.generation import GenerationConfig

    config = GenerationConfig(max_new_tokens=new_tokens)
    ttfts, rates = [], []
    forget = getattr(backend, "forget_prompt", None)  # llama.cpp would reuse the previous prompt
    for _ in range(repeats):
        if forget is not None:
            forget()
        start = time.perf_counter()
        first = None
        count = 0
        for _token in backend.generate_ids(ids, config):
            count += 1
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        assert count == new_tokens, f"generated {count} of {new_tokens} tokens"
        ttfts.append(first - start)
        rates.append((count - 1) / (end - first))
    return statistics.median(ttfts), statistics.median(rates)


def batch4_hf(backend, prompts: list[list[int]], new_tokens: int) -> float:
    import torch

    input_ids = torch.tensor(prompts)
    start = time.perf_counter()
    with torch.inference_mode():
        out = backend.model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
        )
    elapsed = time.perf_counter() - start
    return (out.shape[1] - input_ids.shape[1]) * len(prompts) / elapsed


def batch4_ct2(backend, prompts: list[list[int]], new_tokens: int) -> float:
    tokens = [backend.tokenizer.convert_ids_to_tokens(p) for p in prompts]
    start = time.perf_counter()
    results = backend._generator.generate_batch(
        tokens,
        max_length=new_tokens,
        min_length=new_tokens,
        include_prompt_in_result=False,
        end_token=[],
        sampling_topk=1,
    )
    elapsed = time.perf_counter() - start
    return sum(len(r.sequences_ids[0]) for r in results) / elapsed


def plain_conversion(hf_dir: Path, quantization: str) -> Path:
    """The checkpoint converted as ctranslate2's own loader does it: the single key/value head of
    multi-query attention copied once per query head in the cache (``engine/ct2_loaders.py``)."""
    from engine.convert import convert_checkpoint
    from engine.ct2_loaders import GPTBigCodeLoader

    out = hf_dir.parent / f"{hf_dir.name}-ct2-{quantization}-kv-copied"
    if (out / "model.bin").exists():
        return out
    GPTBigCodeLoader.merged_multi_query = False
    try:
        return convert_checkpoint(hf_dir, out, quantization=quantization, force=True)
    finally:
        GPTBigCodeLoader.merged_multi_query = True


def weight_bytes(folder: Path, kind: str) -> int:
    if kind in ("ct2", "ct2-plain"):
        return (folder / "model.bin").stat().st_size
    if kind == "llamacpp":
        return folder.stat().st_size  # the GGUF file
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def bench_shape(shape: str, args: argparse.Namespace, bandwidth: float) -> list[dict]:
    from engine.backends.ct2 import CT2Backend
    from engine.backends.hf import HFBackend
    from engine.backends.llamacpp import LlamaCppBackend, llama_cpp_available
    from engine.convert import convert_checkpoint
    from engine.gguf_export import gguf_file_for
    from engine.loading import inspect_hf, load_tokenizer

    hf_dir = model_dir(shape)
    source = inspect_hf(hf_dir)
    tokenizer = load_tokenizer(hf_dir)
    ids = prompt_ids(tokenizer, args.prompt_tokens)
    batch = [prompt_ids(tokenizer, args.prompt_tokens, offset=i * 97) for i in range(4)]
    rows = []
    with_hf = not args.skip_hf and (shape == "tiny_starcoder_py" or args.hf_large)
    runs = [("transformers fp32", "hf", None)] if with_hf else []
    runs += [("ct2 float32", "ct2", "float32"), ("ct2 int8", "ct2", "int8")]
    if source.family == "gpt_bigcode" and not args.skip_plain:
        runs.append(("ct2 int8 kv-copied", "ct2-plain", "int8"))
    if llama_cpp_available() and source.family == "gpt_bigcode":
        runs.append(("llama.cpp q8_0", "llamacpp", "q8_0"))
    for label, kind, quantization in runs:
        if kind == "hf":
            backend = HFBackend(hf_dir, tokenizer, source.context_window, threads=args.threads)
            folder = hf_dir
        elif kind == "llamacpp":
            folder = gguf_file_for(hf_dir, quantization)
            backend = LlamaCppBackend(
                folder, tokenizer, min(source.context_window, 2048), threads=args.threads
            )
        else:
            if kind == "ct2-plain":
                folder = plain_conversion(hf_dir, quantization)
            else:
                folder = convert_checkpoint(hf_dir, quantization=quantization)
            backend = CT2Backend(
                folder, tokenizer, source.context_window, threads=args.threads, static_prompt=False
            )
        backend.stop_ids = ()  # random weights may emit EOS: always decode the full length
        time_stream(backend, ids[:32], 4, 1)  # warm-up
        ttft, rate = time_stream(backend, ids, args.new_tokens, args.repeats)
        batch4 = {"hf": batch4_hf, "ct2": batch4_ct2, "ct2-plain": batch4_ct2}.get(kind)
        throughput = batch4(backend, batch, args.new_tokens) if batch4 else float("nan")
        bound = bandwidth / weight_bytes(folder, kind)
        rows.append(
            {
                "model": shape,
                "backend": label,
                "ttft_ms": ttft * 1000,
                "decode": rate,
                "batch4": throughput,
                "bound": bound,
            }
        )
        print(
            f"  {shape:18s} {label:18s} ttft {ttft * 1000:8.1f} ms  decode {rate:7.2f} tok/s", file=sys.stderr
        )
        backend.close()
        del backend
        gc.collect()
    return rows


def print_table(rows: list[dict]) -> None:
    header = (
        f"| {'model':18s} | {'backend':18s} | {'TTFT ms':>8s} | {'decode tok/s':>12s} | {'batch-4 tok/s':>13s} "
        f"| {'bound tok/s':>11s} | {'% of bound':>10s} | {'TTFT vs HF':>10s} | {'decode vs HF':>12s} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for row in rows:
        base = next(
            (r for r in rows if r["model"] == row["model"] and r["backend"].startswith("transformers")), None
        )
        ttft_ratio = f"{base['ttft_ms'] / row['ttft_ms']:.2f}x" if base else "-"
        decode_ratio = f"{row['decode'] / base['decode']:.2f}x" if base else "-"
        batch4 = "-" if math.isnan(row["batch4"]) else f"{row['batch4']:.2f}"  # llama.cpp: no batch API
        print(
            f"| {row['model']:18s} | {row['backend']:18s} | {row['ttft_ms']:8.1f} | {row['decode']:12.2f} "
            f"| {batch4:>13s} | {row['bound']:11.2f} | {row['decode'] / row['bound']:10.0%} "
            f"| {ttft_ratio:>10s} | {decode_ratio:>12s} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--large", default="gptbigcode-1.1b", choices=[*SHAPES, "none"], help="the larger model"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-hf", action="store_true", help="leave out the transformers baseline")
    parser.add_argument(
        "--skip-plain",
        action="store_true",
        help="leave out CTranslate2's own GPTBigCode conversion (key/value head copied per query head)",
    )
    parser.add_argument(
        "--hf-large",
        action="store_true",
        help="also run the transformers baseline on the larger model (slow)",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    load = os.getloadavg()
    bandwidth = copy_bandwidth(args.threads)
    shapes = ["tiny_starcoder_py"] + ([args.large] if args.large not in ("none", "tiny_starcoder_py") else [])
    rows = []
    for shape in shapes:
        rows += bench_shape(shape, args, bandwidth)
    print(
        f"\nprompt {args.prompt_tokens} tokens, {args.new_tokens} new tokens, greedy, {args.threads} threads; "
        f"copy bandwidth {bandwidth / 1e9:.1f} GB/s; load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}, "
        f"at end {os.getloadavg()[0]:.2f}\n"
    )
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
