"""LoRA adaptation of a (tiny, random) Qwen2 model served as GGUF: FIM training with Qwen's own FIM
tokens lowers the loss and resumes exactly, the adapter bundle runs on llama.cpp (base GGUF + GGUF
LoRA) with the same greedy tokens as the merged model under transformers, and export writes a
loadable merged checkpoint and GGUF."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.errors import BackendUnavailableError, CorruptModelError
from training.lora import AdaptConfig, adapt, encode_instruction

pytest.importorskip("llama_cpp", reason="the [llama] extra is not installed")

PROMPTS = (
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "class Stack:\n    def push(self, item):\n",
)


@pytest.fixture(scope="module")
def qwen_gguf(tmp_path_factory: pytest.TempPathFactory, engine_cache_dir: Path) -> Path:
    """A tiny random Qwen2 checkpoint exported to an f32 GGUF file: the base, as the catalog's is one."""
    from helpers.tiny_models import ensure_tiny_model

    from engine.gguf_export import export_gguf

    hf = ensure_tiny_model("qwen2")
    return export_gguf(hf, tmp_path_factory.mktemp("qwen-base") / "tiny-qwen2.f32.gguf", quantization="f32")


def _config(base: Path, corpus: Path, out: Path, **overrides) -> AdaptConfig:
    cfg = AdaptConfig(
        base=str(base),
        out=str(out),
        corpus=str(corpus),
        lora_rank=8,
        lora_alpha=16,
        seq_len=64,
        micro_batch=4,
        lr=5e-3,
        warmup_steps=2,
        max_steps=40,
        log_every=5,
        eval_every=20,
        eval_blocks=4,
        threads=1,
        dtype="float32",
    )
    return replace(cfg, **overrides)


@pytest.fixture(scope="module")
def fim_run(qwen_gguf: Path, training_corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("fim-run") / "run"
    summary = adapt(_config(qwen_gguf, training_corpus_dir, out), progress=False)
    return out, summary


def _greedy(model, prompt: str, n: int = 24) -> list[int]:
    from engine.generation import GenerationConfig

    ids = model.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return list(model.backend.generate_ids(ids, GenerationConfig(max_new_tokens=n)))


def test_fim_rows_carry_the_models_own_fim_tokens(qwen_gguf: Path, training_corpus_dir: Path) -> None:
    from engine.loading import inspect_model, source_tokenizer
    from training.data import PackedStream
    from training.pretrain import load_split_texts

    tokenizer = source_tokenizer(inspect_model(qwen_gguf))
    stream = PackedStream(
        load_split_texts(training_corpus_dir, "train"), tokenizer, seq_len=256, micro_batch=8, fim_rate=1.0
    )
    rows = stream.next_batch().flatten().tolist() + [t for row in stream.pool for t in row]
    qwen = tokenizer.convert_tokens_to_ids(["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"])
    assert all(t in rows for t in qwen)
    assert tokenizer.convert_tokens_to_ids("<fim_prefix>") in (None, tokenizer.unk_token_id)


def test_fim_adaptation_lowers_the_loss_and_writes_the_bundle(fim_run, qwen_gguf: Path) -> None:
    import gguf
    from safetensors.torch import load_file

    out, summary = fim_run
    assert summary["step"] == 40 and summary["stopped"] == "max_steps"
    assert summary["last_loss"] < summary["first_loss"] - 0.5, summary
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    held = [h["heldout_loss"] for h in log if "heldout_loss" in h]
    assert len(held) == 2 and held[1] < held[0]
    assert (out / "loss.png").stat().st_size > 0

    bundle = out / "bundle"
    manifest = json.loads((bundle / "stackcoder.json").read_text())
    assert manifest["base"]["path"] == str(qwen_gguf.resolve()) and len(manifest["base"]["sha256"]) == 64
    assert manifest["adapter"] == "adapter" and manifest["lora_gguf"] == "adapter.gguf"
    adapter = load_file(str(bundle / "adapter" / "adapter_model.safetensors"))
    assert {t.dtype for t in adapter.values()} == {torch.float16}
    reader = gguf.GGUFReader(str(bundle / "adapter.gguf"))
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.lora.alpha"].contents() == 16.0
    names = {t.name for t in reader.tensors}
    for module in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"):
        assert {f"blk.1.{module}.weight.lora_a", f"blk.1.{module}.weight.lora_b"} <= names


def test_resume_continues_exactly(qwen_gguf: Path, training_corpus_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    straight = _config(qwen_gguf, training_corpus_dir, tmp_path / "straight", max_steps=6, log_every=2)
    adapt(straight, progress=False)
    split = replace(straight, out=str(tmp_path / "split"), stop_after=3)
    first = adapt(split, progress=False)
    assert first["step"] == 3 and first["stopped"] == "stop_after"
    second = adapt(split, progress=False)
    assert second["step"] == 6
    a = load_file(str(tmp_path / "straight" / "checkpoint" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "split" / "checkpoint" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    other = replace(split, lora_rank=4)
    with pytest.raises(Exception, match="--lora-rank 8"):
        adapt(other, progress=False)


def test_bundle_runs_on_llamacpp_like_the_merged_model(fim_run, qwen_gguf: Path, tmp_path: Path) -> None:
    from engine import load_model
    from training.adapter_bundle import export_adapter

    out, _ = fim_run
    merged = export_adapter(out, tmp_path / "merged", merge=True, gguf_type="f32")
    with load_model(out / "bundle", threads=1) as adapted:
        assert adapted.backend_name == "llamacpp" and adapted.fim is not None
        assert adapted.fim.prefix == "<|fim_prefix|>"
        adapted_tokens = [_greedy(adapted, p) for p in PROMPTS]
        adapted_text = adapted.complete(PROMPTS[0], suffix="\n", max_new_tokens=16).text
    with load_model(merged / "hf", backend="transformers", threads=1) as reference:
        assert [_greedy(reference, p) for p in PROMPTS] == adapted_tokens
        assert reference.complete(PROMPTS[0], suffix="\n", max_new_tokens=16).text == adapted_text
    with load_model(qwen_gguf, threads=1) as base:
        assert [_greedy(base, p) for p in PROMPTS] != adapted_tokens  # the adapter changes the model
    with load_model(merged, backend="llamacpp", threads=1) as merged_gguf:  # the merged GGUF file
        assert [_greedy(merged_gguf, p) for p in PROMPTS] == adapted_tokens
    with pytest.raises(BackendUnavailableError, match="--backend llamacpp"):
        load_model(out / "bundle", backend="transformers")


def test_export_writes_loadable_checkpoint_and_gguf(fim_run, tmp_path: Path) -> None:
    import gguf

    from engine.loading import inspect_model
    from stackcoder_cli.main import main

    out, _ = fim_run
    target = tmp_path / "exported"
    assert main(["train", "export", str(out), "--out", str(target), "--merge", "--gguf-type", "q8_0"]) == 0
    manifest = json.loads((target / "stackcoder.json").read_text())
    assert manifest["hf"] == "hf" and manifest["gguf"] == "model.q8_0.gguf"
    assert inspect_model(target / "hf").family == "qwen2"
    source = inspect_model(target)
    assert source.hf_dir == (target / "hf").resolve() or source.hf_dir == target / "hf"
    assert (
        source.gguf_file is not None
        and source.gguf_file.name == "model.q8_0.gguf"
        and source.lora_file is None
    )
    reader = gguf.GGUFReader(str(target / "model.q8_0.gguf"))
    assert reader.fields["general.architecture"].contents() == "qwen2"
    assert {t.name: t.tensor_type.name for t in reader.tensors}["blk.0.attn_q.weight"] == "Q8_0"
    assert main(["train", "export", str(out), "--out", str(target)]) == 1  # exists: --force needed


def _bundle_naming_another_base(bundle: Path, copy: Path, sha256: str) -> Path:
    """A copy of ``bundle`` whose manifest names a base with another sha256."""
    import shutil

    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "stackcoder.json").read_text())
    manifest["base"]["sha256"] = sha256
    (copy / "stackcoder.json").write_text(json.dumps(manifest))
    return copy


def test_a_bundle_without_a_tokenizer_copy_uses_the_bases(fim_run, tmp_path: Path) -> None:
    """What the repository commits: the matrices and the GGUF LoRA file, no copy of the tokenizer."""
    import shutil

    from engine import load_model
    from engine.loading import inspect_model

    out, _ = fim_run
    slim = tmp_path / "slim"
    shutil.copytree(out / "bundle", slim)
    for name in (
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "merges.txt",
        "special_tokens_map.json",
    ):
        (slim / "adapter" / name).unlink(missing_ok=True)
    manifest = json.loads((slim / "stackcoder.json").read_text())
    del manifest["tokenizer"]
    (slim / "stackcoder.json").write_text(json.dumps(manifest))
    assert inspect_model(slim).tokenizer_dir != slim / "adapter"
    with load_model(out / "bundle", threads=1) as full, load_model(slim, threads=1) as committed:
        assert [_greedy(committed, p) for p in PROMPTS] == [_greedy(full, p) for p in PROMPTS]


def test_a_changed_base_is_refused(fim_run, tmp_path: Path) -> None:
    from engine.loading import inspect_model

    out, _ = fim_run
    copy = _bundle_naming_another_base(out / "bundle", tmp_path / "bundle", "0" * 64)
    with pytest.raises(CorruptModelError, match="trained on a base with sha256 000000000000"):
        inspect_model(copy)


def test_sft_trains_the_answer_in_the_chat_template(qwen_gguf: Path, tmp_path: Path) -> None:
    from engine.loading import inspect_model, source_tokenizer
    from engine.prompts import build_template_chat_prompt

    tokenizer = source_tokenizer(inspect_model(qwen_gguf))
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    example = encode_instruction(tokenizer, "Add two numbers.", "def add(a, b):\n    return a + b", 128)
    assert example is not None
    trained = [t for t in example["labels"] if t != -100]
    assert tokenizer.decode(trained) == "def add(a, b):\n    return a + b<|im_end|>\n"
    prompt = tokenizer.decode(example["input_ids"][: len(example["labels"]) - len(trained)])
    assert prompt.endswith("<|im_start|>assistant\n")
    # the system message is the one the product's chat sends, so training and use see one prompt
    assert prompt == build_template_chat_prompt(tokenizer, [{"role": "user", "content": "Add two numbers."}])

    data = tmp_path / "pairs.jsonl"
    pairs = [
        {"instruction": f"Return {n} squared.", "response": f"def f():\n    return {n} * {n}\n"}
        for n in range(12)
    ]
    data.write_text("\n".join(json.dumps(p) for p in pairs))
    cfg = replace(
        _config(qwen_gguf, tmp_path, tmp_path / "sft"),
        task="sft",
        corpus=None,
        data=str(data),
        max_steps=20,
        seq_len=128,  # the system message and the question take ~60 tokens
    )
    summary = adapt(cfg, progress=False)
    assert summary["last_loss"] < summary["first_loss"] - 0.5, summary
    assert json.loads((tmp_path / "sft" / "bundle" / "stackcoder.json").read_text())["name"].endswith("-sft")


def test_adapt_help_and_errors(capsys) -> None:
    from stackcoder_cli.main import build_parser, main

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["train", "adapt", "--help"])
    assert exc.value.code == 0
    assert "--lora-rank" in capsys.readouterr().out
    assert main(["train", "adapt", "--base", "x", "--out", "/tmp/never", "--task", "fim"]) == 1
    assert "--corpus" in capsys.readouterr().err


def test_two_process_ddp_run(qwen_gguf: Path, training_corpus_dir: Path, tmp_path: Path) -> None:
    """The same command under torchrun (2 processes, gloo on CPU) trains one adapter and its bundle."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun), "--nproc-per-node", "2", "--master-port", "29563", "-m", "stackcoder_cli.main",
        "train", "adapt", "--base", str(qwen_gguf), "--corpus", str(training_corpus_dir), "--out", str(out),
        "--lora-rank", "4", "--seq-len", "32", "--micro-batch", "2", "--max-steps", "4", "--warmup-steps", "1",
        "--log-every", "2", "--eval-every", "4", "--eval-blocks", "2", "--threads", "1", "--dtype", "float32",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads((out / "checkpoint" / "train_state.json").read_text())
    assert state["step"] == 4 and len(state["data"]) == 2
    assert state["tokens"] == 4 * 2 * 2 * 32  # steps x processes x rows x tokens
    assert (out / "bundle" / "adapter.gguf").is_file()


def test_targets_that_the_model_lacks_are_named(tiny_gptbigcode_dir: Path, tmp_path: Path) -> None:
    from training.errors import ConfigError
    from training.lora import build_lora_model

    with pytest.raises(ConfigError, match="choose among .*c_attn"):
        build_lora_model(tiny_gptbigcode_dir, AdaptConfig(base="", out=str(tmp_path)))
    model = build_lora_model(tiny_gptbigcode_dir, AdaptConfig(base="", out="", lora_targets=("c_attn",)))
    assert model.get_nb_trainable_parameters()[0] > 0


def test_a_new_run_starts_from_an_earlier_adapter(
    fim_run, qwen_gguf: Path, training_corpus_dir: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    from training.errors import CheckpointError
    from training.lora import _init_from_adapter, build_lora_model, resolve_base

    out, fresh = fim_run
    cfg = _config(qwen_gguf, training_corpus_dir, tmp_path / "next", init_adapter=str(out / "bundle"))
    base = resolve_base(cfg.base)
    model = build_lora_model(base.hf_dir, cfg)
    saved = load_file(str(out / "bundle" / "adapter" / "adapter_model.safetensors"))
    name = next(k for k in saved if "lora_B" in k)
    live = dict(model.named_parameters())
    match = next(
        k for k in live if k.replace(".default", "").endswith(name.split("base_model.model.", 1)[-1])
    )
    assert not torch.equal(live[match].detach(), saved[name].float())  # fresh: B starts at zero
    _init_from_adapter(out / "bundle", model, base)
    assert torch.allclose(dict(model.named_parameters())[match].detach(), saved[name].float())
    # a run from it continues where that one ended: on the same first batches, a lower loss
    summary = adapt(replace(cfg, max_steps=5), progress=False)
    assert summary["step"] == 5
    assert summary["first_loss"] < fresh["first_loss"]
    # an adapter of another base is refused
    other = _bundle_naming_another_base(out / "bundle", tmp_path / "other", "f" * 64)
    with pytest.raises(CheckpointError, match="another base"):
        _init_from_adapter(other, model, base)
    with pytest.raises(CheckpointError, match="holds no adapter"):
        _init_from_adapter(tmp_path, model, base)
