"""A raw JSON-RPC client over a server process's stdio, for what a well-behaved client cannot send."""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import tempfile
import threading
import time
from typing import Any

from lsp_helpers import SERVER_COMMAND


class RawServer:
    """Spawns `python -m lsp_server` and speaks framed JSON-RPC to it by hand.

    Requests from the server (workspace/configuration, window/workDoneProgress/create) are
    answered with null so it never waits on us.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            SERVER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env
        )
        self._ids = itertools.count(1)
        self._responses: dict[Any, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self.notifications: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # ---- wire ------------------------------------------------------------------------------------

    def send_bytes(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(json.dumps(message).encode("utf-8"))

    def _read(self) -> None:
        try:
            self._read_frames()
        except (OSError, ValueError):  # the server exited or the test closed the pipes
            return

    def _read_frames(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length is None:
                continue
            message = json.loads(out.read(length))
            if "method" in message and "id" in message:  # a request from the server
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                self.seen.append(message)
            elif "method" in message:
                self.seen.append(message)
                self.notifications.put(message)
            else:
                with self._cond:
                    self._responses[message.get("id")] = message
                    self._cond.notify_all()

    # ---- helpers ---------------------------------------------------------------------------------

    def request(self, method: str, params: Any = None) -> int:
        msg_id = next(self._ids)
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def response(self, msg_id: Any, timeout: float = 120.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self._responses:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no response to request {msg_id}")
                self._cond.wait(left)
            return self._responses.pop(msg_id)

    def call(self, method: str, params: Any = None, timeout: float = 120.0) -> dict[str, Any]:
        return self.response(self.request(method, params), timeout)

    def initialize(self, root_uri: str | None, options: dict[str, Any] | None = None) -> dict[str, Any]:
        caps = {"window": {"workDoneProgress": True}, "workspace": {"configuration": False}}
        result = self.call(
            "initialize",
            {"processId": None, "rootUri": root_uri, "capabilities": caps, "initializationOptions": options},
        )
        self.notify("initialized", {})
        return result

    def wait_status(self, timeout: float = 240.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            status = self.call("stackcoder/status", {})["result"]
            if status["model"]["loaded"] or status["model"]["error"]:
                return status
            time.sleep(0.2)
        raise TimeoutError("the model did not load")

    def messages(self, method: str = "window/showMessage") -> list[dict[str, Any]]:
        return [m["params"] for m in list(self.seen) if m.get("method") == method]

    def rss_kb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.stderr.close()


def did_open(server: RawServer, uri: str, text: str, version: int = 1) -> None:
    server.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}},
    )


def inline(
    server: RawServer, uri: str, line: int, character: int, method: str = "textDocument/inlineCompletion"
) -> int:
    """Send an automatic inline completion request (or ``method`` with its params); its id."""
    return server.request(
        method,
        {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": 2},
        },
    )


def model_options(path: Any, **completion: Any) -> dict[str, Any]:
    """initializationOptions that load the model at ``path`` on one thread, with completion settings."""
    return {
        "stackcoder": {
            "model": {"path": str(path), "threads": 1},
            "completion": {"maxNewTokens": 8, **completion},
        }
    }
