"""A backend that streams from an OpenAI-compatible ``/v1/completions`` server over HTTP.

vLLM, Text Generation Inference, llama.cpp's server and ``stackcoder serve-openai`` all speak this
API, so a team can share one GPU machine. Text arrives as server-sent events; cancelling closes
the stream, which the server sees as a disconnect and stops generating.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from engine.backends.base import Backend
from engine.errors import BackendUnavailableError, GenerationError
from engine.generation import CancelToken, GenerationConfig
from engine.prompts import FIM_FORMATS, FimFormat

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["API_KEY_ENV", "DEFAULT_CONTEXT_WINDOW", "HttpBackend"]

log = logging.getLogger(__name__)

API_KEY_ENV = "STACKCODER_API_KEY"  # bearer token sent when no api_key is given
DEFAULT_CONTEXT_WINDOW = 2048  # used when neither the server nor the caller says

# Fields of a /v1/models entry that give the context window, by server (first present wins).
CONTEXT_FIELDS = ("max_model_len", "context_window", "context_length", "max_context_length")


def normalize_base_url(base_url: str) -> str:
    """``http(s)://host:port[/prefix]/v1`` without a trailing slash; ``/v1`` is added when missing."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BackendUnavailableError(
            f"{base_url!r} is not an http(s) URL; give the server's base URL, like http://127.0.0.1:8000/v1."
        )
    url = base_url.strip().rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def _context_window_of(entry: dict[str, Any]) -> int | None:
    for key in CONTEXT_FIELDS:
        value = entry.get(key)
        if isinstance(value, int) and value > 0:
            return value
    meta = entry.get("meta")  # llama.cpp's server
    if isinstance(meta, dict) and isinstance(meta.get("n_ctx_train"), int):
        return meta["n_ctx_train"]
    return None


class HttpBackend(Backend):
    """``engine.backends.base.Backend`` against a remote OpenAI-compatible server.

    Args:
        base_url: the server's API root, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model id to request; defaults to the first one the server lists.
        api_key: bearer token; defaults to ``$STACKCODER_API_KEY`` (none when unset).
        context_window: used when the server's ``/v1/models`` does not state one.
        fim: the model's FIM format name when the server does not state one (``FIM_FORMATS``).
        timeout: seconds to wait for the connection and for each piece of the stream.

    Raises:
        BackendUnavailableError: the URL is malformed, the server cannot be reached or refuses
            the token, or it does not serve the requested model.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        context_window: int | None = None,
        fim: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        if fim is not None and fim not in FIM_FORMATS:
            raise BackendUnavailableError(
                f"unknown FIM format {fim!r}; use one of: {', '.join(FIM_FORMATS)}."
            )
        try:
            entry = self._find_model(model)
        except BaseException:
            self._client.close()
            raise
        self.model_id: str = entry.get("id") or model or "default"
        self.name = self.model_id
        self.context_window: int = _context_window_of(entry) or context_window or DEFAULT_CONTEXT_WINDOW
        self.family = str(entry.get("family") or "remote")
        fim_name = entry.get("fim_format") or fim
        self.fim: FimFormat | None = FIM_FORMATS.get(fim_name) if isinstance(fim_name, str) else None
        log.info(
            "http backend: %s model=%s context_window=%d", self.base_url, self.model_id, self.context_window
        )

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast | None:
        """Remote models expose no tokenizer."""
        return None

    # ------------------------------------------------------------------ discovery

    def _find_model(self, wanted: str | None) -> dict[str, Any]:
        try:
            response = self._client.get("/models")
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(
                f"cannot reach the completions server at {self.base_url} ({exc.__class__.__name__}); "
                "start it or check the URL."
            ) from None
        self._raise_for_auth(response)
        if response.status_code == 404:  # servers without /v1/models: trust the caller
            return {"id": wanted} if wanted else {}
        if response.status_code != 200:
            raise BackendUnavailableError(
                f"the server at {self.base_url} answered /models with HTTP {response.status_code}; "
                "check that it is an OpenAI-compatible server."
            )
        try:
            entries = [e for e in response.json().get("data", []) if isinstance(e, dict)]
        except (ValueError, AttributeError):
            raise BackendUnavailableError(
                f"the server at {self.base_url} did not answer /models with JSON; "
                "check that it is an OpenAI-compatible server."
            ) from None
        if wanted is None:
            return entries[0] if entries else {}
        for entry in entries:
            if entry.get("id") == wanted:
                return entry
        served = ", ".join(str(e.get("id")) for e in entries) or "none"
        raise BackendUnavailableError(
            f"the server at {self.base_url} does not serve model {wanted!r} (it serves: {served}); "
            "pick one of those."
        )

    def _raise_for_auth(self, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            raise BackendUnavailableError(
                f"the server at {self.base_url} refused the request (HTTP {response.status_code}); "
                f"set {API_KEY_ENV} to the server's token."
            )

    # ------------------------------------------------------------------ generation

    def _payload(
        self, prompt: str | list[str], config: GenerationConfig, *, stream: bool = True
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model_id,
            "prompt": prompt,
            "max_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
            "stream": stream,
        }
        if config.stop:
            payload["stop"] = list(config.stop)
        if config.seed is not None:
            payload["seed"] = config.seed
        if config.top_k:
            payload["top_k"] = config.top_k  # vLLM, llama.cpp and stackcoder accept it
        return payload

    def stream(
        self, prompt: str, config: GenerationConfig, cancel: CancelToken | None = None
    ) -> Generator[str, None, None]:
        """Yield text pieces as the server sends them; stop early (closing the stream) on cancel."""
        cancel = cancel or CancelToken()
        if cancel.cancelled:
            return
        try:
            with self._client.stream("POST", "/completions", json=self._payload(prompt, config)) as response:
                self._raise_for_auth(response)
                if response.status_code != 200:
                    response.read()
                    raise GenerationError(
                        f"the completions server answered HTTP {response.status_code} "
                        f"({_error_message(response.text)}); check the request settings."
                    )
                for line in response.iter_lines():
                    if cancel.cancelled:
                        return
                    piece = _parse_event(line)
                    if piece is None:
                        return
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(
                f"the connection to {self.base_url} failed during generation ({exc.__class__.__name__}); "
                "check that the server is still running."
            ) from None

    def generate_batch(
        self, prompts: Sequence[str], config: GenerationConfig, cancel: CancelToken | None = None
    ) -> list[str]:
        """Generate for several prompts in one request (the server may batch them); texts in order
        (one request: it runs to its end)."""
        if not prompts:
            return []
        try:
            response = self._client.post(
                "/completions", json=self._payload(list(prompts), config, stream=False)
            )
        except httpx.HTTPError as exc:
            raise BackendUnavailableError(
                f"the connection to {self.base_url} failed during generation ({exc.__class__.__name__}); "
                "check that the server is still running."
            ) from None
        self._raise_for_auth(response)
        if response.status_code != 200:
            raise GenerationError(
                f"the completions server answered HTTP {response.status_code} "
                f"({_error_message(response.text)}); check the request settings."
            )
        try:
            choices = sorted(response.json()["choices"], key=lambda c: c.get("index", 0))
            texts = [str(c.get("text") or "") for c in choices]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise GenerationError(
                "the completions server answered without choices; check that it is an OpenAI-compatible server."
            ) from None
        if len(texts) != len(prompts):
            raise GenerationError(
                f"the completions server returned {len(texts)} answers for {len(prompts)} prompts; "
                "check that it accepts a list of prompts."
            )
        return texts

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_event(line: str) -> str | None:
    """The text of one server-sent event line ("" for lines without text, None at the end)."""
    if not line.startswith("data:"):
        return ""  # blank separators, comments, event names
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        raise GenerationError(
            "the completions server sent an event that is not JSON; check that it is an OpenAI-compatible server."
        ) from None
    if "error" in event:
        raise GenerationError(
            f"the completions server failed ({_error_message(event).rstrip('.')}); check the server's log."
        )
    choices = event.get("choices") or [{}]
    return choices[0].get("text") or ""


def _error_message(body: str | dict[str, Any]) -> str:
    """The message inside an OpenAI-style error body, or the body itself, shortened."""
    data: Any = body
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            return body.strip()[:200] or "no details"
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        error = error.get("message", error)
    return str(error).strip()[:200]
