"""llama.cpp speed by build and weight layout, on the default model, in one run.

For each configuration a fresh process loads the GGUF model with llama-cpp-python and measures a
cold prompt pass (``--prompt-tokens`` tokens of real Python) and greedy decoding
(``--new-tokens`` tokens), best of ``--repeats``:

* this build (scripts/install.sh compiles llama.cpp with GGML_NATIVE for the CPU it runs on),
  with the CPU's repacked weight layouts (llama.cpp's "extra buffer types") and without them
  (what the engine does on CPUs with AMX, where the AMX buffers crash);
* optionally another build (``--other PATH``: a site-packages folder holding a llama_cpp package
  built otherwise, e.g. ``CMAKE_ARGS=-DGGML_NATIVE=OFF pip install --target PATH ...``).

    .venv/bin/python benchmarks/llamacpp_build.py --model qwen2.5-coder-1.5b-instruct
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MEASURE = textwrap.dedent(
    """
    import json, sys, time, sysconfig
    from pathlib import Path
    import llama_cpp, llama_cpp.llama as module
    path, prompt_tokens, new_tokens, repeats, repack, threads = sys.argv[1:7]
    original = llama_cpp.llama_model_default_params
    def defaults():
        params = original()
        params.use_extra_bufts = repack == "1"
        return params
    module.llama_cpp.llama_model_default_params = defaults
    llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_batch=512, n_threads=int(threads),
                          n_threads_batch=int(threads), flash_attn=True, verbose=False)
    text = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text()
    ids = llm.tokenize(text.encode(), add_bos=False)[: int(prompt_tokens)]
    best_prompt = best_decode = 0.0
    for _ in range(int(repeats)):
        llm.reset()
        start = time.perf_counter()
        llm.eval(ids)
        prompt_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(int(new_tokens)):  # one decoding step per token (the token's value does not matter)
            llm.eval([ids[-1]])
        decode_s = time.perf_counter() - start
        best_prompt = max(best_prompt, len(ids) / prompt_s)
        best_decode = max(best_decode, int(new_tokens) / decode_s)
    print(json.dumps({"prompt_tok_s": best_prompt, "decode_tok_s": best_decode,
                      "system_info": llama_cpp.llama_print_system_info().decode()[:400]}))
    """
)


def run(path: Path, repack: bool, args: argparse.Namespace, site: str | None) -> dict:
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, "-c", MEASURE, str(path), str(args.prompt_tokens), str(args.new_tokens),
            str(args.repeats), "1" if repack else "0", str(args.threads)]  # fmt: skip
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", help="catalog name or GGUF file")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--other", default=None, help="site-packages folder of another llama_cpp build")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from engine.cpu import instruction_sets
    from engine.loading import inspect_model

    source = inspect_model(args.model)
    path = source.gguf_file or Path(args.model)
    configs = [("this build, repacked weights", True, None), ("this build, plain weights", False, None)]
    if args.other:
        configs += [("other build, repacked weights", True, args.other), ("other build, plain weights", False, args.other)]  # fmt: skip
    print(f"model {source.name}; CPU: {instruction_sets()}; {args.threads} threads; "
          f"prompt {args.prompt_tokens} tokens, decode {args.new_tokens} tokens, best of {args.repeats}")  # fmt: skip
    print("| configuration | prompt tok/s | decode tok/s |")
    print("|---|---:|---:|")
    infos = set()
    for label, repack, site in configs:
        result = run(path, repack, args, site)
        infos.add(result["system_info"])
        print(f"| {label} | {result['prompt_tok_s']:.1f} | {result['decode_tok_s']:.1f} |", flush=True)
    for info in infos:
        print(f"llama.cpp system info: {info}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
