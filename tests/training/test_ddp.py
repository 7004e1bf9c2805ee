"""Data-parallel pretraining with 2 processes through torchrun (gloo on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_two_process_ddp_run(training_corpus_dir, training_tokenizer_dir, tmp_path) -> None:
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--nproc-per-node",
        "2",
        "--master-port",
        "29561",
        "-m",
        "stackcoder_cli.main",
        "train",
        "pretrain",
        "--corpus",
        str(training_corpus_dir),
        "--tokenizer",
        str(training_tokenizer_dir),
        "--out",
        str(out),
        "--size",
        "tiny",
        "--seq-len",
        "64",
        "--micro-batch",
        "2",
        "--max-steps",
        "4",
        "--warmup-steps",
        "1",
        "--log-every",
        "2",
        "--eval-every",
        "4",
        "--eval-blocks",
        "2",
        "--threads",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=480, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((out / "run_config.json").read_text())
    assert info["world_size"] == 2
    state = json.loads((out / "checkpoint" / "train_state.json").read_text())
    assert state["step"] == 4 and state["tokens"] == 4 * 2 * 64 * 2
    assert len(state["data"]) == 2 and state["data"][0] != state["data"][1]
    assert [h["loss"] for h in state["history"] if "loss" in h]
