"""SFT: response-only loss, training that lowers the loss, LoRA merged, output the engine loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.errors import ConfigError, CorpusError
from training.sft import SFTConfig, run_sft
from training.sft_data import IGNORE_INDEX, PROMPT_TEMPLATE, encode_pair, load_pairs

PAIRS = [
    {
        "instruction": f"Write a function `add_{i}(x)` that returns x plus {i}.",
        "response": f"```python\ndef add_{i}(x):\n    return x + {i}\n```",
    }
    for i in range(8)
]


@pytest.fixture()
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "dataset.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), **p}) + "\n" for i, p in enumerate(PAIRS)))
    return path


def test_loss_is_on_the_response_only(tiny_gptbigcode_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gptbigcode_dir)
    pair = PAIRS[0]
    encoded = encode_pair(tokenizer, pair["instruction"], pair["response"], max_len=512)
    assert encoded is not None
    prompt_len = len(
        tokenizer(PROMPT_TEMPLATE.format(instruction=pair["instruction"]), add_special_tokens=False)[
            "input_ids"
        ]
    )
    assert encoded["labels"][:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert encoded["labels"][prompt_len:] == encoded["input_ids"][prompt_len:]
    assert encoded["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(encoded["input_ids"][prompt_len:-1]) == pair["response"]
    # Too long a prompt: dropped; a long response: cut to fit.
    assert encode_pair(tokenizer, "word " * 400, "x", max_len=16) is None
    assert len(encode_pair(tokenizer, "hi", pair["response"] * 20, max_len=24)["input_ids"]) == 24


def test_full_fine_tuning_lowers_the_loss(tiny_gptbigcode_dir, data_file: Path, tmp_path: Path) -> None:
    cfg = SFTConfig(model=str(tiny_gptbigcode_dir), data=str(data_file), out=str(tmp_path / "sft"), epochs=4, lr=3e-3,
                    batch_size=4, max_seq_len=64, warmup_ratio=0.0, schedule="constant_with_warmup")  # fmt: skip
    summary = run_sft(cfg, progress=False)
    assert summary["steps"] == 8 and summary["examples"] == 8
    assert summary["last_loss"] < summary["first_loss"]
    log = [json.loads(line) for line in (tmp_path / "sft" / "sft_log.jsonl").read_text().splitlines()]
    assert len(log) == 8
    assert (tmp_path / "sft" / "hf" / "config.json").exists()
    assert log[-1]["tokens"] > log[0]["tokens"] > 0


@pytest.mark.slow  # converts to CTranslate2
def test_output_is_exported_to_an_engine_bundle(tiny_gptbigcode_dir, data_file: Path, tmp_path: Path) -> None:
    from training.export import export_bundle

    cfg = SFTConfig(model=str(tiny_gptbigcode_dir), data=str(data_file), out=str(tmp_path / "sft"), epochs=1,
                    batch_size=8, max_seq_len=64)  # fmt: skip
    run_sft(cfg, progress=False)
    bundle = export_bundle(tmp_path / "sft", tmp_path / "bundle", name="tiny-sft")
    manifest = json.loads((bundle / "stackcoder.json").read_text())
    assert manifest["hf"] == "hf" and (bundle / manifest["ct2"]["int8"]).is_dir()
    tokenizer_config = json.loads((bundle / "hf" / "tokenizer_config.json").read_text())
    assert "### Instruction" in tokenizer_config["chat_template"]


def test_lora_is_merged_and_the_engine_chats_in_the_instruct_format(
    tiny_gptbigcode_dir, data_file: Path, tmp_path: Path, engine_cache_dir
) -> None:
    from engine import load_model

    cfg = SFTConfig(model=str(tiny_gptbigcode_dir), data=str(data_file), out=str(tmp_path / "lora"), epochs=1,
                    lr=1e-3, batch_size=8, max_seq_len=128, lora=True, lora_r=4, optimizer="sgd")  # fmt: skip
    summary = run_sft(cfg, progress=False)
    hf_dir = Path(summary["hf_dir"])
    assert not (hf_dir / "adapter_config.json").exists()  # merged into plain weights
    model = load_model(hf_dir, backend="transformers")
    try:
        assert model.chat_style == "instruct"
        assert isinstance(model.generate(PROMPT_TEMPLATE.format(instruction="hi"), max_new_tokens=4), str)
    finally:
        model.close()


def test_bad_options_and_data_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--optimizer"):
        SFTConfig(model="m", data="d", out="o", optimizer="lion")
    with pytest.raises(ConfigError, match="--lr"):
        SFTConfig(model="m", data="d", out="o", lr=0)
    with pytest.raises(CorpusError, match="does not exist"):
        load_pairs(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x"}\n')
    with pytest.raises(CorpusError, match="line 1"):
        load_pairs(bad)


@pytest.mark.slow
def test_data_parallel_launch_with_torchrun(tiny_gptbigcode_dir, data_file: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    torchrun = Path(sys.executable).parent / "torchrun"
    command = [str(torchrun), "--nproc-per-node", "2", "-m", "stackcoder_cli.main", "train", "sft",
               "--model", str(tiny_gptbigcode_dir), "--data", str(data_file), "--out", str(tmp_path / "ddp"),
               "--epochs", "2", "--batch-size", "2", "--lr", "1e-3", "--max-seq-len", "64"]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "ddp" / "sft.json").read_text())
    assert summary["processes"] == 2
    assert summary["steps"] == 4  # 8 examples / (2 processes x batch 2) x 2 epochs
