"""The CPU the engines run on: its vector and matrix instruction sets, read once.

The engines' speed and even their numerics differ between CPUs with AVX-512, VNNI, BF16 and AMX
and those with AVX2 + FMA only (CTranslate2's int8 kernels, llama.cpp's repacked weights,
PyTorch's bfloat16 matrix products). Backend and compute-type choices ask here, and
``stackcoder models list``/the model card say which instruction sets were used.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = ["cpu_flags", "has_bf16", "instruction_sets"]

# The flags that matter to the engines, in the order they are reported.
REPORTED = (
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of this CPU (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def has_bf16() -> bool:
    """Whether the CPU has bfloat16 matrix instructions (AMX or AVX-512 BF16)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def instruction_sets() -> str:
    """The relevant instruction sets, e.g. ``"avx2 fma f16c avx512f … avx512_bf16"``."""
    flags = cpu_flags()
    return " ".join(flag for flag in REPORTED if flag in flags) or "unknown"
