"""The CTranslate2 and transformers backends: same tokens, streaming, stops, cancellation within
one step, seeds, token healing and cached prompt heads."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from engine.backends.ct2 import CT2Backend
from engine.backends.hf import HFBackend
from engine.backends.tokens import IncrementalDecoder, TokenHealer
from engine.convert import convert_checkpoint
from engine.generation import CancelToken, GenerationConfig
from engine.loading import load_tokenizer

PROMPT = "def fibonacci(n):\n    if n < 2:\n        return n\n    return"


@pytest.fixture(scope="module", params=["tiny_gptbigcode_dir", "tiny_starcoder2_dir"])
def backends(request: pytest.FixtureRequest, engine_cache_dir: Path):
    """(CTranslate2 float32, transformers float32) backends on the same tiny checkpoint."""
    hf_dir = request.getfixturevalue(request.param)
    tokenizer = load_tokenizer(hf_dir)
    ct2 = CT2Backend(
        convert_checkpoint(hf_dir, quantization="float32"), tokenizer, 1024, threads=1, min_static_tokens=8
    )
    hf = HFBackend(hf_dir, tokenizer, 1024, threads=1)
    yield ct2, hf
    ct2.close()
    hf.close()


def test_backends_agree_greedy_with_healing(backends) -> None:
    ct2, hf = backends
    for prompt in (PROMPT, "class Stack:\n    def push(self, item):\n", "x = [1, 2, 3]\nfor i in"):
        config = GenerationConfig(max_new_tokens=24)
        ids = ct2.encode(prompt)
        assert list(ct2.generate_ids(ids, config)) == list(hf.generate_ids(ids, config))
        assert "".join(ct2.stream(prompt, config)) == "".join(hf.stream(prompt, config))


def test_streams_token_by_token(backends) -> None:
    ct2, _ = backends
    pieces = list(ct2.stream(PROMPT, GenerationConfig(max_new_tokens=20, heal=False)))
    assert len(pieces) > 5
    ids = list(ct2.generate_ids(ct2.encode(PROMPT), GenerationConfig(max_new_tokens=20)))
    assert "".join(pieces) == ct2.tokenizer.decode(ids, skip_special_tokens=True)


def test_max_new_tokens(backends) -> None:
    for backend in backends:
        assert (
            len(list(backend.generate_ids(backend.encode(PROMPT), GenerationConfig(max_new_tokens=7)))) <= 7
        )


@pytest.mark.parametrize("which", [0, 1], ids=["ct2", "transformers"])
def test_cancel_lands_within_one_step(backends, which: int) -> None:
    backend = backends[which]
    cancel = CancelToken()
    produced = []
    for token in backend.generate_ids(backend.encode(PROMPT), GenerationConfig(max_new_tokens=200), cancel):
        produced.append(token)
        if len(produced) == 3:
            cancel.cancel()
    assert len(produced) == 3


def test_cancel_from_another_thread_stops_quickly(backends) -> None:
    ct2, _ = backends
    cancel = CancelToken()
    timer = threading.Timer(0.05, cancel.cancel)
    start = time.perf_counter()
    timer.start()
    produced = list(ct2.generate_ids(ct2.encode(PROMPT), GenerationConfig(max_new_tokens=1000), cancel))
    elapsed = time.perf_counter() - start
    timer.cancel()
    assert len(produced) < 1000 and elapsed < 2.0


def test_cancelled_before_start_generates_nothing(backends) -> None:
    cancel = CancelToken()
    cancel.cancel()
    for backend in backends:
        assert list(backend.stream(PROMPT, GenerationConfig(max_new_tokens=10), cancel)) == []


@pytest.mark.parametrize("which", [0, 1], ids=["ct2", "transformers"])
def test_seeds_make_sampling_reproducible(backends, which: int) -> None:
    backend = backends[which]

    def sample(seed: int) -> list[int]:
        config = GenerationConfig(max_new_tokens=16, temperature=1.0, seed=seed)
        return list(backend.generate_ids(backend.encode(PROMPT), config))

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_stop_tokens_end_generation(backends) -> None:
    ct2, hf = backends
    eos = ct2.tokenizer.eos_token_id
    assert eos in ct2.stop_ids
    vocab = ct2.tokenizer.get_vocab()
    assert {vocab["<file_sep>"], vocab["<fim_pad>"]} <= set(ct2.stop_ids)
    for backend in backends:
        out = list(backend.generate_ids(backend.encode(PROMPT), GenerationConfig(max_new_tokens=64)))
        assert not set(out) & set(backend.stop_ids)


def test_token_healing_after_newline(tiny_gptbigcode_dir: Path) -> None:
    """A prompt ending right after a newline is backed off to the previous token boundary and the
    first generated token must restore the newline (usually merged with the next indentation)."""
    tokenizer = load_tokenizer(tiny_gptbigcode_dir)
    healer = TokenHealer(tokenizer)
    ids = tokenizer("def f(x):\n", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids)[-1] == "Ċ"
    healing = healer.heal(ids)
    assert healing is not None
    assert healing.ids == ids[:-1] and healing.removed == "\n"
    texts = healer.token_texts()
    assert all(texts[i].startswith("\n") for i in healing.allowed)
    assert tokenizer.convert_tokens_to_ids("ĊĠĠĠ") in healing.allowed
    assert healer.heal(tokenizer("x<fim_middle>", add_special_tokens=False)["input_ids"]) is None


def test_healing_after_indentation_allows_the_shorter_whitespace_token(tiny_gptbigcode_dir: Path) -> None:
    """After an indentation the usual continuation is one space less of whitespace, then " return":
    a prefix of the removed text, not an extension of it, must be allowed, and the rest then
    constrains the next token."""
    tokenizer = load_tokenizer(tiny_gptbigcode_dir)
    healer = TokenHealer(tokenizer)
    ids = tokenizer("def f(x):\n    ", add_special_tokens=False)["input_ids"]
    healing = healer.heal(ids)
    assert healing is not None and healing.removed.endswith("    ")
    texts = healer.token_texts()
    shorter = texts.index(healing.removed[:-1])
    assert shorter in healing.allowed
    assert all(
        healing.removed.startswith(texts[i]) or texts[i].startswith(healing.removed) for i in healing.allowed
    )
    assert healer.rest_after(healing.removed, shorter) == " "
    assert all(texts[i].startswith(" ") for i in healer.consistent(" "))
    assert tokenizer.convert_tokens_to_ids("Ġreturn") in healer.consistent(" ")


def test_healed_tokens_reproduce_the_removed_text(backends) -> None:
    for prompt in ("def f(x):\n    ", "class A:\n    def g(self):\n        ", "x = [1, 2, 3]\n"):
        for backend in backends:
            healing = TokenHealer(backend.tokenizer).heal(backend.encode(prompt))
            assert healing is not None
            produced = list(backend._healed_ids(healing, GenerationConfig(max_new_tokens=6), None))
            text = backend.tokenizer.decode(produced, clean_up_tokenization_spaces=False)
            assert text.startswith(healing.removed) or healing.removed.startswith(text), (prompt, text)


def test_healed_generation_starts_with_removed_text(backends) -> None:
    ct2, hf = backends
    prompt = "def f(x):\n"
    ids = ct2.encode(prompt)
    healing = TokenHealer(ct2.tokenizer).heal(ids)
    assert healing is not None
    for backend in backends:
        first = next(
            iter(
                backend.generate_ids(
                    healing.ids, GenerationConfig(max_new_tokens=4), first_allowed=healing.allowed
                )
            )
        )
        assert first in healing.allowed
        text = "".join(backend.stream(prompt, GenerationConfig(max_new_tokens=8)))
        healed_first = ct2.tokenizer.decode([first])
        assert text.startswith(healed_first[1:][: len(text)])


def test_static_prompt_reuse_gives_identical_output(backends, tiny_gptbigcode_dir: Path) -> None:
    ct2, _ = backends
    plain = CT2Backend(ct2.model_dir, ct2.tokenizer, 1024, threads=1, static_prompt=False)
    head = "import os\nimport sys\n\n\ndef main(argv):\n    parser = make_parser()\n    args = parser.parse(argv)\n"
    config = GenerationConfig(max_new_tokens=12)
    hits_before = ct2.static_prompt_hits
    for typed in ("    re", "    ret", "    retu"):
        ids = ct2.encode(head + typed)
        assert ct2.static_split(ids) > 8
        assert list(ct2.generate_ids(ids, config)) == list(plain.generate_ids(ids, config))
    assert ct2.static_prompt_hits - hits_before >= 2


def test_steps_after_a_healed_token_reuse_the_healing_steps_prompt_head(backends) -> None:
    """A healed request forwards its prompt once: the continuation hits the head cached by the
    constrained first step instead of caching a second, longer head."""
    ct2, hf = backends
    prompt = (
        "import json\nimport re\n\n\ndef load(path):\n    text = read(path)\n    data = json.loads(text)\n"
    )
    assert TokenHealer(ct2.tokenizer).heal(ct2.encode(prompt)) is not None
    ct2.optimistic_healing.enabled = False  # the constrained way, whatever earlier tests taught it
    heads, hits = len(ct2._static_heads), ct2.static_prompt_hits
    config = GenerationConfig(max_new_tokens=8)
    text = "".join(ct2.stream(prompt, config))
    assert len(ct2._static_heads) == heads + 1
    assert ct2.static_prompt_hits == hits + 1
    hf.optimistic_healing.enabled = False
    assert text == "".join(hf.stream(prompt, config))
    ct2.optimistic_healing.enabled = hf.optimistic_healing.enabled = True


def test_a_line_break_and_the_keystrokes_after_it_share_one_prompt_head(backends) -> None:
    """Typing a line break starts one new cached head, and the keystrokes on the new line reuse
    it: the request right after the newline (whose healed prompt lacks the newline token) must
    not cache a head of its own."""
    ct2, _ = backends
    above = "import os\nimport sys\n\n\ndef main(argv):\n    parser = make_parser()\n    args = parser.parse(argv)"
    config = GenerationConfig(max_new_tokens=4)
    "".join(ct2.stream(above + "  # parse", config))
    heads = len(ct2._static_heads)
    for typed in ("\n", "\n ", "\n    ", "\n    re", "\n    return"):
        "".join(ct2.stream(above + "  # parse" + typed, config))
    assert len(ct2._static_heads) == heads + 1


def test_a_short_request_does_not_wait_for_a_long_one(backends) -> None:
    """Two requests decode side by side: a completion asked while a long answer streams comes
    back before that answer ends."""
    ct2, _ = backends
    backend = CT2Backend(ct2.model_dir, ct2.tokenizer, 1024, threads=1)
    assert backend.parallel_requests == 2
    backend.stop_ids = ()  # random weights may emit EOS: the long answer must stay long
    ids = backend.encode(PROMPT)
    cancel, started, long_done = CancelToken(), threading.Event(), threading.Event()

    def long_answer() -> None:
        for _ in backend.generate_ids(ids, GenerationConfig(max_new_tokens=900), cancel):
            started.set()
        long_done.set()

    thread = threading.Thread(target=long_answer)
    thread.start()
    try:
        assert started.wait(30)
        short = list(backend.generate_ids(ids, GenerationConfig(max_new_tokens=4)))
        assert len(short) == 4
        assert not long_done.is_set(), "the short request waited for the long one"
    finally:
        cancel.cancel()
        thread.join(30)
    backend.close()


def test_small_models_decode_on_one_thread(tmp_path: Path) -> None:
    from engine.backends.ct2 import SINGLE_THREAD_MAX_WEIGHT_BYTES, default_threads

    (tmp_path / "model.bin").write_bytes(b"\0" * 1024)
    assert default_threads(tmp_path, "cpu") == 1
    with open(tmp_path / "model.bin", "r+b") as handle:
        handle.truncate(SINGLE_THREAD_MAX_WEIGHT_BYTES + 1)  # sparse: no real bytes written
    assert default_threads(tmp_path, "cpu") == (os.cpu_count() or 1)
    assert default_threads(tmp_path / "missing", "cpu") == (os.cpu_count() or 1)


def test_prompt_longer_than_context_is_refused(backends) -> None:
    from engine.errors import GenerationError

    ct2, _ = backends
    with pytest.raises(GenerationError, match="context window"):
        list(ct2.stream("x = 1\n" * 600, GenerationConfig(max_new_tokens=4)))


def test_incremental_decoder_matches_full_decode(tiny_gptbigcode_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_gptbigcode_dir)
    text = "naïve café → ünïcode 🙂 done\n    return x"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decoder = IncrementalDecoder(tokenizer)
    pieces = [decoder.push(i) for i in ids] + [decoder.flush()]
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces)


def test_prompt_head_cache_is_bounded(backends) -> None:
    """Past its byte budget the head cache is dropped by swapping in a fresh generator."""
    ct2, _ = backends
    bounded = CT2Backend(
        ct2.model_dir, ct2.tokenizer, 1024, threads=1, min_static_tokens=8, static_cache_bytes=1
    )
    assert bounded.kv_bytes_per_token > 0
    config = GenerationConfig(max_new_tokens=4)
    outputs = []
    for i in range(3):
        ids = bounded.encode(f"import module_{i}\nimport os\nimport sys\n\n\ndef main_{i}(argv):\n    return")
        outputs.append(list(bounded.generate_ids(ids, config)))
        assert outputs[-1] == list(ct2.generate_ids(ids, config))
    deadline = time.monotonic() + 30
    while bounded.rebuilds == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bounded.rebuilds >= 1
