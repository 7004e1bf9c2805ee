"""`serve --tcp`: loopback without a token, anything else only with one, checked on initialize."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lsp_helpers import SERVER_COMMAND, server_env

TOKEN = "s3cret-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)


_READERS: dict[int, Any] = {}


def _read(sock: socket.socket, timeout: float = 30.0) -> dict[str, Any] | None:
    """The next message, or None when the server closed the connection."""
    sock.settimeout(timeout)
    stream = _READERS.setdefault(id(sock), sock.makefile("rb"))
    length = None
    while True:
        try:
            line = stream.readline()
        except ConnectionResetError:
            return None
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = stream.read(length)
    return json.loads(body) if body else None


def _initialize(sock: socket.socket, options: dict[str, Any] | None) -> dict[str, Any] | None:
    params = {"processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": options}
    _send(sock, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})
    while (message := _read(sock)) is not None:
        if message.get("id") == 1 and "method" not in message:
            return message
    return None


def _connect(port: int, timeout: float = 60.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def tcp_server() -> Iterator[tuple[subprocess.Popen, int]]:
    port = _free_port()
    proc = subprocess.Popen(
        [*SERVER_COMMAND, "--tcp", f"0.0.0.0:{port}", "--token", TOKEN],
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    yield proc, port
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_non_loopback_without_a_token_is_refused(host: str) -> None:
    env = server_env()
    env.pop("STACKCODER_SERVE_TOKEN", None)
    proc = subprocess.run(
        [*SERVER_COMMAND, "--tcp", f"{host}:{_free_port()}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "refusing to serve" in proc.stderr and "--token" in proc.stderr


def test_a_client_without_the_token_is_disconnected_and_the_right_one_is_served(
    tcp_server: tuple[subprocess.Popen, int],
) -> None:
    proc, port = tcp_server
    for options in (None, {"token": "wrong"}, {"stackcoder": {}}):
        with _connect(port) as sock:
            answer = _initialize(sock, options)
            assert answer is not None and answer["error"]["code"] == -32600, answer
            assert "token" in answer["error"]["message"]
            assert _read(sock, timeout=10) is None  # disconnected
    with _connect(port) as sock:
        answer = _initialize(sock, {"token": TOKEN})
        assert answer is not None and "capabilities" in answer["result"], answer
        # Nobody else gets in while it is connected.
        with _connect(port) as intruder:
            assert _initialize(intruder, {"token": TOKEN}) is None
        _send(sock, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
        _send(sock, {"jsonrpc": "2.0", "method": "exit"})
    assert proc.wait(timeout=30) == 0


def test_requests_before_an_authenticated_initialize_are_not_served(
    tcp_server: tuple[subprocess.Popen, int],
) -> None:
    _, port = tcp_server
    with _connect(port) as sock:
        _send(sock, {"jsonrpc": "2.0", "id": 7, "method": "stackcoder/attribution", "params": {"text": "x"}})
        answer = _read(sock)
        assert answer is not None and answer["error"]["code"] == -32002
