"""GGUF export and the llama.cpp backend: same greedy tokens as transformers, KV reuse across
requests that share a prefix, token healing, cancellation, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.backends.hf import HFBackend
from engine.errors import ConversionError
from engine.generation import CancelToken, GenerationConfig
from engine.gguf_export import export_gguf, gguf_file_for
from engine.loading import load_tokenizer

llama_cpp = pytest.importorskip("llama_cpp", reason="the [llama] extra is not installed")

from engine.backends.llamacpp import LlamaCppBackend  # noqa: E402

PROMPTS = (
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "class Stack:\n    def push(self, item):\n",
)


@pytest.fixture(scope="module")
def pair(tiny_gptbigcode_dir: Path, engine_cache_dir: Path):
    """(llama.cpp on an f32 GGUF export, transformers float32) on the same tiny checkpoint."""
    tokenizer = load_tokenizer(tiny_gptbigcode_dir)
    llama = LlamaCppBackend(gguf_file_for(tiny_gptbigcode_dir, "f32"), tokenizer, 1024, threads=1)
    hf = HFBackend(tiny_gptbigcode_dir, tokenizer, 1024, threads=1)
    yield llama, hf
    llama.close()
    hf.close()


def test_export_writes_every_tensor_and_the_whole_vocabulary(
    tiny_gptbigcode_dir: Path, tmp_path: Path
) -> None:
    import json

    import gguf

    out = export_gguf(tiny_gptbigcode_dir, tmp_path / "m.gguf", quantization="q8_0")
    reader = gguf.GGUFReader(str(out))
    names = {t.name for t in reader.tensors}
    config = json.loads((tiny_gptbigcode_dir / "config.json").read_text())
    per_block = {"attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_up", "ffn_down"}
    for block in range(config["n_layer"]):
        assert {f"blk.{block}.{p}.weight" for p in per_block} <= names
    assert {"token_embd.weight", "position_embd.weight", "output_norm.weight"} <= names
    tokens = reader.fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == config["vocab_size"]
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_qkv.weight"] == "Q8_0" and types["blk.0.attn_norm.weight"] == "F32"
    assert not list(tmp_path.glob("*.partial"))


def test_export_refuses_other_architectures(tiny_starcoder2_dir: Path, tmp_path: Path) -> None:
    import json

    llama_dir = tmp_path / "llama"
    llama_dir.mkdir()
    (llama_dir / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    with pytest.raises(ConversionError, match="GPTBigCode .StarCoder. and Starcoder2"):
        export_gguf(llama_dir, tmp_path / "m.gguf")
    with pytest.raises(ConversionError, match="quantization"):
        export_gguf(tiny_starcoder2_dir, tmp_path / "m.gguf", quantization="q3_weird")


def test_starcoder2_export_runs_like_transformers(tiny_starcoder2_dir: Path, tmp_path: Path) -> None:
    """Starcoder2 (grouped-query attention, rotary positions) through llama.cpp's starcoder2."""
    import gguf

    out = export_gguf(tiny_starcoder2_dir, tmp_path / "sc2.gguf", quantization="f32")
    names = {t.name for t in gguf.GGUFReader(str(out)).tensors}
    assert {"blk.0.attn_q.weight", "blk.0.attn_k.bias", "blk.0.ffn_up.weight", "output_norm.bias"} <= names
    tokenizer = load_tokenizer(tiny_starcoder2_dir)
    llama = LlamaCppBackend(out, tokenizer, 1024, threads=1)
    hf = HFBackend(tiny_starcoder2_dir, tokenizer, 1024, threads=1)
    try:
        config = GenerationConfig(max_new_tokens=16)
        for prompt in PROMPTS:
            ids = llama.encode(prompt)
            assert list(llama.generate_ids(ids, config))[:8] == list(hf.generate_ids(ids, config))[:8]
    finally:
        llama.close()
        hf.close()


def test_greedy_tokens_match_transformers(pair) -> None:
    llama, hf = pair
    agree = total = 0
    for prompt in PROMPTS:
        ids = llama.encode(prompt)
        config = GenerationConfig(max_new_tokens=24)
        mine, reference = list(llama.generate_ids(ids, config)), list(hf.generate_ids(ids, config))
        assert mine[:8] == reference[:8]
        agree += sum(a == b for a, b in zip(mine, reference, strict=False))
        total += max(len(mine), len(reference))
    assert agree / total >= 0.9


def test_a_request_sharing_a_prefix_gives_the_same_tokens_as_a_fresh_one(
    pair, tiny_gptbigcode_dir: Path
) -> None:
    llama, _ = pair
    fresh = LlamaCppBackend(gguf_file_for(tiny_gptbigcode_dir, "f32"), llama.tokenizer, 1024, threads=1)
    config = GenerationConfig(max_new_tokens=12)
    head = "import os\nimport sys\n\n\ndef main(argv):\n    parser = make_parser()\n"
    try:
        for typed in ("    re", "    ret", "    retu", "    retu"):  # the last one repeats exactly
            ids = llama.encode(head + typed)
            assert list(llama.generate_ids(ids, config)) == list(fresh.generate_ids(ids, config))
            fresh.forget_prompt()  # the reference never reuses anything
    finally:
        fresh.close()


def test_healed_stream_matches_transformers(pair) -> None:
    llama, hf = pair
    prompt = "def f(x):\n"
    config = GenerationConfig(max_new_tokens=10)
    assert "".join(llama.stream(prompt, config)) == "".join(hf.stream(prompt, config))


def test_cancel_lands_within_one_step(pair) -> None:
    llama, _ = pair
    cancel = CancelToken()
    produced = []
    for token in llama.generate_ids(llama.encode(PROMPTS[0]), GenerationConfig(max_new_tokens=200), cancel):
        produced.append(token)
        if len(produced) == 3:
            cancel.cancel()
    assert len(produced) == 3


def test_seeds_make_sampling_reproducible(pair) -> None:
    llama, _ = pair

    def sample(seed: int) -> list[int]:
        config = GenerationConfig(max_new_tokens=16, temperature=1.0, seed=seed)
        return list(llama.generate_ids(llama.encode(PROMPTS[0]), config))

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_load_model_completes_with_the_llamacpp_backend(
    tiny_gptbigcode_dir: Path, engine_cache_dir: Path
) -> None:
    from engine import load_model

    with load_model(tiny_gptbigcode_dir, backend="llamacpp", threads=1) as model:
        assert model.backend_name == "llamacpp"
        completion = model.complete("def add(a, b):\n    ", "\n", max_new_tokens=8, use_cache=False)
        assert completion.generated_tokens > 0
    exported = list((engine_cache_dir / "gguf").glob("*.q8_0.gguf"))
    assert len(exported) == 1


def test_a_pausable_prompt_pauses_between_chunks_and_decodes_the_same_tokens(pair) -> None:
    from engine.backends.llamacpp import FIRST_CHUNK_TOKENS

    llama, _hf = pair
    ids = llama.encode(PROMPTS[0] * 8)
    assert len(ids) > 3 * FIRST_CHUNK_TOKENS
    config = GenerationConfig(max_new_tokens=8)
    llama.forget_prompt()
    plain = list(llama.generate_ids(ids, config))
    pauses: list[CancelToken] = []
    llama.set_pause_point(pauses.append)
    try:
        llama.forget_prompt()
        paused = list(llama.generate_ids(ids, config))
        assert paused == plain and plain
        # a pause before each chunk, and the chunks cover the prompt but its last token
        assert len(pauses) == len(llama.prompt_chunks) >= 2
        assert sum(llama.prompt_chunks) == len(ids) - 1
        # a longer prompt after it: only its new tokens are evaluated
        more = ids + llama.encode(PROMPTS[1])
        pauses.clear()
        assert list(llama.generate_ids(more, config))
        assert sum(llama.prompt_chunks) == len(more) - 1 - len(ids)
        # cancelled at a pause point: nothing is generated
        llama.set_pause_point(lambda cancel: cancel.cancel())
        llama.forget_prompt()
        assert list(llama.generate_ids(ids, config, CancelToken())) == []
    finally:
        llama.set_pause_point(None)


def test_two_threads_generating_on_one_runtime_take_turns(pair) -> None:
    import threading

    llama, _hf = pair
    config = GenerationConfig(max_new_tokens=12)
    first, second = (llama.encode(p) for p in PROMPTS)
    expected = [list(llama.generate_ids(first, config)), list(llama.generate_ids(second, config))]
    results: list[list[int]] = []
    running = llama.generate_ids(first, config)
    head = next(running)  # a generation suspended mid-answer holds the runtime
    other = threading.Thread(target=lambda: results.append(list(llama.generate_ids(second, config))))
    other.start()
    other.join(0.5)
    assert other.is_alive() and not results  # it waits for the runtime instead of sharing it
    assert [head, *running] == expected[0]
    other.join(30)
    assert results == [expected[1]]


def test_drafted_greedy_decoding_gives_the_plain_tokens_in_fewer_passes(pair) -> None:
    llama, _hf = pair
    # code that repeats itself: the continuation is in the prompt, so drafts get accepted
    ids = llama.encode(PROMPTS[0] * 6)
    config = GenerationConfig(max_new_tokens=40)
    saved = llama.draft_tokens
    try:
        llama.draft_tokens = 0
        llama.forget_prompt()
        plain = list(llama.generate_ids(ids, config))
        llama.draft_tokens = 4
        before = (llama.drafts.passes, llama.drafts.drafted, llama.drafts.accepted)
        llama.forget_prompt()
        drafted = list(llama.generate_ids(ids, config))
        passes, proposed, accepted = (
            now - then
            for now, then in zip(
                (llama.drafts.passes, llama.drafts.drafted, llama.drafts.accepted), before, strict=True
            )
        )
        assert drafted == plain and len(plain) == 40
        assert accepted > 0 and proposed >= accepted
        assert passes + 1 < len(plain)  # the first token comes from the prompt's pass
        # the KV state left behind is consistent: a request sharing the prefix decodes the same
        llama.draft_tokens = 0
        assert list(llama.generate_ids(ids, config)) == plain
    finally:
        llama.draft_tokens = saved


def test_warming_measures_passes_and_chooses_a_draft_length_from_them(tiny_gptbigcode_dir: Path) -> None:
    from engine.drafts import DRAFT_LENGTHS, best_draft_length

    llama = LlamaCppBackend(
        gguf_file_for(tiny_gptbigcode_dir, "f32"), load_tokenizer(tiny_gptbigcode_dir), 1024, threads=1
    )
    try:
        assert llama.draft_tokens == 0  # plain until measured
        assert llama.warm_shapes() is not None
        assert sorted(llama.pass_seconds) == [1, *(k + 1 for k in DRAFT_LENGTHS)]
        assert all(seconds > 0 for seconds in llama.pass_seconds.values())
        assert llama.draft_tokens == best_draft_length(llama.pass_seconds)
        assert llama.warm_shapes() is None  # measured once
        # the measurement leaves a usable runtime behind
        ids = llama.encode(PROMPTS[0])
        assert list(llama.generate_ids(ids, GenerationConfig(max_new_tokens=6)))
    finally:
        llama.close()
    chosen = LlamaCppBackend(
        gguf_file_for(tiny_gptbigcode_dir, "f32"), llama.tokenizer, 1024, threads=1, draft_tokens=2
    )
    try:
        assert chosen.warm_shapes() is None and chosen.draft_tokens == 2
    finally:
        chosen.close()


def test_a_documents_prompt_state_is_kept_for_when_the_user_comes_back(pair) -> None:
    from engine.backends.llamacpp import SAVE_AT_LEAST

    llama, _hf = pair
    first, other = llama.encode(PROMPTS[0] * 12), llama.encode(PROMPTS[1] * 12)
    assert min(len(first), len(other)) > SAVE_AT_LEAST
    config = GenerationConfig(max_new_tokens=6)
    llama.forget_prompt()
    expected = list(llama.generate_ids(first, config))
    list(llama.generate_ids(other, config))  # another document: the first one's state is kept
    assert len(llama.saved_prompts) == 1 and llama.saved_prompts[0].tokens[: len(first)] == first
    llama.set_pause_point(lambda cancel: None)  # records the evaluated prompt chunks
    try:
        restored = llama.restored_prompts
        assert list(llama.generate_ids(first, config)) == expected
        assert llama.restored_prompts == restored + 1
        assert sum(llama.prompt_chunks) == 0  # nothing of the prompt evaluated again
        # the other document's state was kept in turn, and the restored one stays saved (the
        # request overwrote the live copy's tail); typing in the other document reuses its state
        assert [s.tokens[: len(other)] for s in llama.saved_prompts[1:]] == [other]
        assert llama.saved_prompts[0].tokens[: len(first)] == first
        typed = other + llama.encode("    return")
        assert list(llama.generate_ids(typed, config))
        assert sum(llama.prompt_chunks) == len(typed) - 1 - len(other)
    finally:
        llama.set_pause_point(None)
    # typing at one place never saves: a few tokens of difference are not worth a copy
    llama.forget_prompt()
    for end in range(len(first) - 5, len(first)):
        list(llama.generate_ids(first[:end], config))
    assert llama.saved_prompts == []


def test_a_held_prompt_is_evaluated_once_and_answers_requests_that_begin_with_it(pair) -> None:
    llama, _hf = pair
    head = PROMPTS[0] * 8
    config = GenerationConfig(max_new_tokens=6)
    llama.forget_prompt()
    ids = llama.encode(head + "\n    x =")
    expected = list(llama.generate_ids(ids, config))
    llama.forget_prompt()
    assert llama.held_tokens(head) == (0, len(llama.encode(head)))
    held = llama.hold(head)
    assert held == len(llama.encode(head)) and llama.held_tokens(head).held == held
    assert llama.hold(head) == 0  # held already: nothing evaluated again
    assert llama.held_tokens(head + "\n    x =").held >= held - 1
    llama.set_pause_point(lambda cancel: None)  # records the evaluated prompt chunks
    try:
        assert list(llama.generate_ids(ids, config)) == expected  # as if evaluated from scratch
        assert sum(llama.prompt_chunks) <= len(ids) - held
    finally:
        llama.set_pause_point(None)


def test_a_cancelled_hold_stops_between_chunks(pair) -> None:
    llama, _hf = pair
    llama.forget_prompt()
    cancel = CancelToken()
    cancel.cancel()
    assert llama.hold(PROMPTS[1] * 20, cancel) == 0
    assert llama.held_tokens(PROMPTS[1] * 20).held == 0


def test_a_saved_state_that_holds_nearly_all_of_the_live_one_is_not_copied_again(pair) -> None:
    from engine.backends.llamacpp import SAVE_AT_LEAST

    llama, _hf = pair
    window = PROMPTS[0] * 12
    config = GenerationConfig(max_new_tokens=4)
    llama.forget_prompt()
    llama.hold(window)
    # completions at places inside the window: each begins from the window's state, which is
    # saved once; their own short tails are not worth a copy each
    ids = llama.encode(window)
    for cut in (len(ids) // 2, len(ids) // 3, len(ids) // 2 + 3):
        assert len(ids) - cut >= SAVE_AT_LEAST
        list(llama.generate_ids(ids[:cut] + llama.encode("pass"), config))
    assert len(llama.saved_prompts) == 1 and llama.saved_prompts[0].tokens == ids
