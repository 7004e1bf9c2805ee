"""The HTTP backend against the project's own OpenAI-compatible server, started for real.

A tiny random-weight model is loaded with ``engine.load_model`` and served by uvicorn on a free
loopback port; ``HttpBackend`` (and plain httpx for the wire format) talk to it over TCP. Greedy
output over HTTP must equal the local model's output exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.backends.base import Backend
from engine.backends.http import HttpBackend, normalize_base_url
from engine.errors import BackendUnavailableError, GenerationError
from engine.generation import CancelToken, GenerationConfig
from engine.openai_server import check_bind, create_app, is_loopback
from engine.prompts import FIM_FORMATS, build_fim_prompt

TOKEN = "test-token-123"
PROMPT = "def wrap(text, width):\n    lines = []\n    for word in text.split():\n"
REPO_ROOT = Path(__file__).resolve().parents[2]


class CountingModel:
    """The real engine model, counting the pieces it produces (to see cancellation server-side)."""

    def __init__(self, model) -> None:
        self._model = model
        self.produced = 0
        self.finished = threading.Event()
        self.fail_after: int | None = None  # raise a GenerationError after this many pieces

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def stream(self, prompt: str, **kwargs) -> Iterator[str]:
        self.finished.clear()
        try:
            for count, piece in enumerate(self._model.stream(prompt, **kwargs)):
                if self.fail_after is not None and count >= self.fail_after:
                    raise GenerationError("the model failed on purpose; this is a test.")
                self.produced += 1
                yield piece
        finally:
            self.finished.set()


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def local_model(tiny_gptbigcode_dir, engine_cache_dir):
    """The tiny model through CTranslate2, converted into a private cache (one backend: the
    answers compared here must not depend on which backend ``auto`` routed a prompt to)."""
    from engine import load_model

    model = load_model(tiny_gptbigcode_dir, backend="ct2", threads=1)
    yield model
    model.close()


@pytest.fixture(scope="module")
def server(local_model):
    """(base URL, counting model) of a real uvicorn server on a free loopback port, with a token."""
    import uvicorn

    counting = CountingModel(local_model)
    app = create_app(counting, token=TOKEN)
    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/v1", counting
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture()
def backend(server) -> Iterator[HttpBackend]:
    url, _ = server
    client = HttpBackend(url, api_key=TOKEN)
    yield client
    client.close()


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_discovers_the_served_model(backend, local_model) -> None:
    assert isinstance(backend, Backend)
    assert backend.name == local_model.name
    assert backend.context_window == local_model.context_window
    assert backend.tokenizer is None
    assert backend.fim is not None and backend.fim.name == local_model.fim.name == "starcoder"


def test_greedy_stream_equals_the_local_model(backend, local_model) -> None:
    local = local_model.generate(PROMPT, max_new_tokens=24)
    pieces = list(backend.stream(PROMPT, GenerationConfig(max_new_tokens=24)))
    assert len(pieces) > 1  # streamed, not sent at once
    assert "".join(pieces) == local


def test_stop_strings_end_the_text(backend, local_model) -> None:
    local = local_model.generate(PROMPT, max_new_tokens=24)
    stop = local[6:9]
    assert stop and local.find(stop) >= 0
    remote = "".join(backend.stream(PROMPT, GenerationConfig(max_new_tokens=24, stop=(stop,))))
    assert remote == local[: local.find(stop)]


def test_seeded_sampling_is_reproducible(backend) -> None:
    config = GenerationConfig(max_new_tokens=16, temperature=1.0, top_p=0.95, top_k=50, seed=7)
    first = "".join(backend.stream(PROMPT, config))
    assert first and first == "".join(backend.stream(PROMPT, config))


def test_cancel_closes_the_stream_and_stops_the_server(backend, server, local_model) -> None:
    _, counting = server
    budget = local_model.context_window - local_model.count_tokens(PROMPT) - 8
    full = local_model.generate(PROMPT, max_new_tokens=budget)
    full_pieces = local_model.count_tokens(full)
    if full_pieces < 200:
        pytest.skip("the tiny model ends its output early on this prompt")
    cancel = CancelToken()
    received = 0
    counting.produced = 0
    for _piece in backend.stream(PROMPT, GenerationConfig(max_new_tokens=budget), cancel):
        received += 1
        if received == 3:
            cancel.cancel()
    assert received == 3
    assert counting.finished.wait(timeout=30), "the server kept generating after the client left"
    assert counting.produced < full_pieces / 2


def test_a_failure_during_generation_reaches_the_client(backend, server) -> None:
    _, counting = server
    counting.fail_after = 2
    try:
        pieces = []
        with pytest.raises(GenerationError, match="failed on purpose"):
            for piece in backend.stream(PROMPT, GenerationConfig(max_new_tokens=10)):
                pieces.append(piece)
        assert len(pieces) == 2
    finally:
        counting.fail_after = None


def test_concurrent_requests_each_get_their_own_answer(backend, local_model) -> None:
    prompts = [PROMPT, "import os\n\ndef main():\n", "class Stack:\n    def push(self, item):\n"]
    expected = [local_model.generate(p, max_new_tokens=12) for p in prompts]
    results: dict[int, str] = {}

    def ask(i: int) -> None:
        results[i] = "".join(backend.stream(prompts[i], GenerationConfig(max_new_tokens=12)))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [results.get(i) for i in range(len(prompts))] == expected


def test_batch_of_prompts_in_one_request(backend, local_model) -> None:
    prompts = [PROMPT, "import os\n\ndef main():\n"]
    texts = backend.generate_batch(prompts, GenerationConfig(max_new_tokens=10))
    assert texts == [local_model.generate(p, max_new_tokens=10) for p in prompts]
    assert backend.generate_batch([], GenerationConfig()) == []


def test_several_choices_over_http(tiny_gptbigcode_dir, server) -> None:
    from engine import load_model

    url, _ = server
    remote = load_model(url, backend="http", api_key=TOKEN)
    try:
        completion = remote.complete("def add(a, b):\n    ", "\n", n=3, max_new_tokens=8, seed=1)
        assert completion.model == remote.name and remote.backend_name == "http"
        assert 1 <= len(completion.choices) <= 3
    finally:
        remote.close()


def test_non_streaming_completion_wire_format(server, local_model) -> None:
    url, _ = server
    body = {"prompt": PROMPT, "max_tokens": 5, "temperature": 0, "n": 2}
    data = httpx.post(f"{url}/completions", json=body, headers=_headers(), timeout=60).json()
    assert data["object"] == "text_completion" and data["model"] == local_model.name
    assert [c["index"] for c in data["choices"]] == [0, 1]
    expected = local_model.generate(PROMPT, max_new_tokens=5)
    assert all(c["text"] == expected for c in data["choices"])
    assert data["choices"][0]["finish_reason"] in ("stop", "length")
    usage = data["usage"]
    assert usage["prompt_tokens"] == 2 * local_model.count_tokens(PROMPT)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] > 0


def test_suffix_makes_a_fim_request(server, local_model) -> None:
    url, _ = server
    prefix, suffix = "def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n"
    body = {"prompt": prefix, "suffix": suffix, "max_tokens": 12, "temperature": 0}
    data = httpx.post(f"{url}/completions", json=body, headers=_headers(), timeout=60).json()
    fim_prompt = build_fim_prompt(FIM_FORMATS["starcoder"], prefix, suffix)
    assert data["choices"][0]["text"] == local_model.generate(fim_prompt, max_new_tokens=12)


def test_raw_stream_events(server) -> None:
    url, _ = server
    body = {"prompt": PROMPT, "max_tokens": 6, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{url}/completions", json=body, headers=_headers(), timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    assert events[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert all(e["object"] == "text_completion" for e in events)


def test_chat_completions(server, local_model) -> None:
    url, _ = server
    messages = [{"role": "system", "content": "x = 1"}, {"role": "user", "content": "What is x?"}]
    body = {"messages": messages, "max_tokens": 10, "temperature": 0}
    data = httpx.post(f"{url}/chat/completions", json=body, headers=_headers(), timeout=60).json()
    assert data["object"] == "chat.completion"
    text = data["choices"][0]["message"]["content"]
    expected = "".join(local_model.chat([messages[1]], context="x = 1", max_new_tokens=10, temperature=0.0))
    assert text == expected
    with httpx.stream(
        "POST", f"{url}/chat/completions", json={**body, "stream": True}, headers=_headers(), timeout=60
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in lines[:-1]]
    assert "".join(d.get("content", "") for d in deltas) == expected


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/completions", {"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
        ("/completions", {"prompt": "x", "temperature": -1}, 400, "temperature"),
        ("/completions", {"max_tokens": 3}, 400, "prompt"),
        ("/completions", {"prompt": "x", "model": "gpt-4"}, 404, "not served"),
        ("/completions", {"prompt": "x " * 5000, "max_tokens": 4}, 400, "context window"),
        ("/chat/completions", {"messages": [{"role": "assistant", "content": "hi"}]}, 400, "user"),
        ("/chat/completions", {"messages": []}, 400, "messages"),
    ],
)
def test_bad_requests_get_clear_errors(server, path, body, status, fragment) -> None:
    url, _ = server
    response = httpx.post(f"{url}{path}", json=body, headers=_headers(), timeout=60)
    assert response.status_code == status
    assert fragment in response.json()["error"]["message"]


def test_malformed_json_is_a_clear_error(server) -> None:
    url, _ = server
    headers = {**_headers(), "content-type": "application/json"}
    response = httpx.post(f"{url}/completions", content=b"{not json", headers=headers, timeout=10)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_token_is_required(server) -> None:
    url, _ = server
    response = httpx.get(f"{url}/models", timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    bad = httpx.get(f"{url}/models", headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert bad.status_code == 401
    with pytest.raises(BackendUnavailableError, match="STACKCODER_API_KEY"):
        HttpBackend(url, api_key="")


def test_token_from_the_environment(server, monkeypatch) -> None:
    url, _ = server
    monkeypatch.setenv("STACKCODER_API_KEY", TOKEN)
    client = HttpBackend(url)
    try:
        assert client.name
    finally:
        client.close()


def test_unknown_model_lists_the_served_ones(server, local_model) -> None:
    url, _ = server
    with pytest.raises(BackendUnavailableError, match=local_model.name):
        HttpBackend(url, api_key=TOKEN, model="other-model")


def test_unreachable_server_is_one_clear_error() -> None:
    sock = _free_socket()
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(BackendUnavailableError, match="cannot reach"):
        HttpBackend(f"http://127.0.0.1:{port}/v1", timeout=5)


@pytest.mark.parametrize("url", ["ftp://host/v1", "127.0.0.1:8000", ""])
def test_malformed_urls(url: str) -> None:
    with pytest.raises(BackendUnavailableError, match="http"):
        normalize_base_url(url)


def test_base_url_gets_v1() -> None:
    assert normalize_base_url("http://gpu-box:8000/") == "http://gpu-box:8000/v1"
    assert normalize_base_url("https://gpu-box/api/v1") == "https://gpu-box/api/v1"


# --------------------------------------------------------------------------- binding policy


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("::", False),
        ("gpu-box.lan", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_refuses_a_public_address_without_a_token() -> None:
    from engine.errors import EngineError

    with pytest.raises(EngineError, match="--token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "secret")
    check_bind("127.0.0.1", None)


def test_cli_refuses_before_loading_the_model(capsys, monkeypatch) -> None:
    from stackcoder_cli.main import main

    monkeypatch.delenv("STACKCODER_API_KEY", raising=False)
    started = time.monotonic()
    status = main(["serve-openai", "--host", "0.0.0.0", "--model", "/nonexistent/model"])
    assert status != 0
    assert "--token" in capsys.readouterr().err
    assert time.monotonic() - started < 5


def test_cli_serves_the_model(tiny_gptbigcode_dir, local_model) -> None:
    """`stackcoder serve-openai` as a real process, used through HttpBackend."""
    sock = _free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "STACKCODER_API_KEY": TOKEN, "PYTHONPATH": str(REPO_ROOT)}
    launcher = "import sys; from stackcoder_cli.main import main; sys.exit(main(sys.argv[1:]))"
    command = [
        sys.executable,
        "-c",
        launcher,
        "serve-openai",
        "--model",
        str(tiny_gptbigcode_dir),
        "--port",
        str(port),
        "--threads",
        "1",
        "--backend",
        "ct2",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        client = None
        while client is None:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "serve-openai did not start"
            with contextlib.suppress(BackendUnavailableError):
                client = HttpBackend(f"http://127.0.0.1:{port}", api_key=TOKEN, timeout=10)
            time.sleep(0.2)
        with client:
            text = "".join(client.stream(PROMPT, GenerationConfig(max_new_tokens=8)))
        assert text == local_model.generate(PROMPT, max_new_tokens=8)
    finally:
        process.terminate()
        process.wait(timeout=20)
