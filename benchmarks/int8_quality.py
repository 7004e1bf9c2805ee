"""CTranslate2 int8 against float32 on a trained model, per CPU instruction set, in one run.

The model is the embedded ``stackcoder-mini`` (trained, so its next-token choices are not the
near-ties of random weights). For each instruction set (the CPU's own, and AVX2 without VNNI as
oneDNN runs it on AVX2-only CPUs, forced with ONEDNN_MAX_CPU_ISA) the script reports teacher-forced
top-1 agreement of int8 with the float32 conversion over real Python files, the RMS error of the
int8 logits relative to the float32 logits' spread, and the forward time of each.

    .venv/bin/python benchmarks/int8_quality.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ISAS = {"native": {}, "AVX2 (no VNNI)": {"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2"}}


def measure(files: int = 8, tokens: int = 512) -> dict[str, float]:
    """Agreement and error of int8 vs float32 in this process (its ISA set by the environment)."""
    import sysconfig
    import time

    import ctranslate2
    import numpy as np
    from transformers import AutoTokenizer

    from engine.convert import convert_checkpoint

    hf = REPO / "models" / "stackcoder-mini" / "hf"
    tokenizer = AutoTokenizer.from_pretrained(hf)
    stdlib = Path(sysconfig.get_paths()["stdlib"]) / "json"
    texts = [p.read_text(encoding="utf-8") for p in sorted(stdlib.glob("*.py"))][:files]
    sequences = [tokenizer(t)["input_ids"][:tokens] for t in texts]
    generators = {
        q: ctranslate2.Generator(str(convert_checkpoint(hf, quantization=q)), intra_threads=1)
        for q in ("float32", "int8")
    }
    logits: dict[str, list] = {q: [] for q in generators}
    seconds = dict.fromkeys(generators, 0.0)
    for q, generator in generators.items():
        for ids in sequences:
            start = time.perf_counter()
            logits[q].append(np.asarray(generator.forward_batch([ids]))[0])
            seconds[q] += time.perf_counter() - start
    agree = sum(
        int((a.argmax(-1) == b.argmax(-1)).sum())
        for a, b in zip(logits["float32"], logits["int8"], strict=True)
    )
    total = sum(a.shape[0] for a in logits["float32"])
    error = float(
        np.mean(
            [
                np.sqrt(((a - b) ** 2).mean()) / a.std()
                for a, b in zip(logits["float32"], logits["int8"], strict=True)
            ]
        )
    )
    return {
        "agreement": agree / total,
        "positions": total,
        "relative_logits_error": error,
        "float32_ms": 1000 * seconds["float32"] / len(sequences),
        "int8_ms": 1000 * seconds["int8"] / len(sequences),
    }


def measure_in_subprocess(extra_env: dict[str, str]) -> dict[str, float]:
    """``measure`` in a fresh process with ``extra_env`` (oneDNN reads its ISA cap once, at start)."""
    env = {**os.environ, **extra_env, "PYTHONPATH": str(REPO)}
    code = "import json, sys; sys.path.insert(0, 'benchmarks'); from int8_quality import measure; print(json.dumps(measure()))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    from engine.cpu import instruction_sets

    print(f"CPU instruction sets: {instruction_sets()}")
    print(
        "| oneDNN instruction set | int8 top-1 agreement with float32 | relative logits RMS error | float32 ms | int8 ms |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, env in ISAS.items():
        r = measure_in_subprocess(env)
        print(
            f"| {label} | {r['agreement']:.3f} ({r['positions']} positions) | {r['relative_logits_error']:.4f} "
            f"| {r['float32_ms']:.1f} | {r['int8_ms']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
