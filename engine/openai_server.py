"""The engine behind an OpenAI-compatible HTTP API (``stackcoder serve-openai``).

``POST /v1/completions`` (streamed or not; ``suffix`` turns the request into fill-in-the-middle in
the model's own format), ``POST /v1/chat/completions`` (the model's chat prompt) and
``GET /v1/models``. Requests carry ``Authorization: Bearer <token>`` when a token is configured.
The server binds to loopback by default and refuses any other address without a token.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from engine.errors import EngineError
from engine.generation import CancelToken
from engine.prompts import build_fim_prompt
from engine.stopping import StopMatcher

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "check_bind", "create_app", "is_loopback", "serve"]

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_CHOICES = 8  # largest `n` per prompt


class ApiError(Exception):
    """A request the server refuses, answered as an OpenAI-style error object."""

    def __init__(
        self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


def _error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# --------------------------------------------------------------------------- wire types


class CompletionRequest(BaseModel):
    """``POST /v1/completions``; fields other clients send and the engine does not use are ignored."""

    model: str | None = None
    prompt: str | list[str]
    suffix: str | None = None  # fill-in-the-middle: the text after the cursor
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)  # extension also accepted by vLLM and llama.cpp
    n: int = Field(1, ge=1, le=MAX_CHOICES)
    stream: bool = False
    stop: str | list[str] | None = None
    seed: int | None = None


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str | list[dict[str, Any]]

    def text(self) -> str:
        """The message text (text parts of a multi-part message joined)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``; system messages become the chat's context."""

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    n: int = Field(1, ge=1, le=1)
    stream: bool = False
    stop: str | list[str] | None = None


def _stops(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return tuple(s for s in ([stop] if isinstance(stop, str) else stop) if s)


# --------------------------------------------------------------------------- generation helpers


class BlockingStream:
    """A model's blocking text iterator, stepped from worker threads and closed from any thread.

    Steps and ``close`` share a lock, so closing waits for a step in flight (which ends within one
    decoding step once ``cancel`` is set) instead of racing it.
    """

    def __init__(self, start: Callable[[], Iterator[str]], cancel: CancelToken) -> None:
        self._start = start
        self._pieces: Iterator[str] | None = None
        self._lock = threading.Lock()
        self.cancel = cancel
        self.closed = False

    def step(self) -> str | None:
        """The next piece, or None at the end (starting the generation on the first call)."""
        with self._lock:
            if self.closed:
                return None
            if self._pieces is None:
                self._pieces = iter(self._start())
            return next(self._pieces, None)

    def close(self) -> None:
        """Cancel the generation and release the model's iterator."""
        self.cancel.cancel()
        with self._lock:
            self.closed = True
            close = getattr(self._pieces, "close", None)
            if close is not None:
                close()


async def _iterate(stream: BlockingStream) -> AsyncGenerator[str, None]:
    """Drive ``stream`` from the event loop; however the consumer stops, the generation stops too."""
    try:
        while (piece := await run_in_threadpool(stream.step)) is not None:
            yield piece
    finally:
        stream.cancel.cancel()
        # Not awaited: this may run while the request's task is being cancelled.
        asyncio.get_running_loop().run_in_executor(None, stream.close)


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def _new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:24]}"


# --------------------------------------------------------------------------- the application


def create_app(model: Any, *, token: str | None = None, max_concurrency: int = 1) -> FastAPI:
    """The OpenAI-compatible application serving ``model`` (an ``engine.load_model`` result).

    Args:
        model: provides ``name``, ``context_window``, ``fim``, ``count_tokens``, ``stream`` and ``chat``.
        token: when set, every request must send ``Authorization: Bearer <token>``.
        max_concurrency: generations run at the same time; further requests wait their turn.
    """
    app = FastAPI(title="stackcoder OpenAI-compatible API", version="1")
    slots = asyncio.Semaphore(max_concurrency)
    created = int(time.time())

    async def authorize(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(
                401,
                "missing or wrong bearer token; send 'Authorization: Bearer <token>'.",
                "authentication_error",
                "invalid_api_key",
            )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_error_body(exc.message, exc.kind, exc.code), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"invalid request: {where or 'body'}: {first.get('msg', 'malformed')}; fix that field."
        if first.get("type") == "json_invalid":
            message = "the request body is not valid JSON; send a JSON object."
        return JSONResponse(_error_body(message, "invalid_request_error"), status_code=400)

    def check_model(requested: str | None) -> None:
        if requested and requested != model.name:
            raise ApiError(
                404, f"model {requested!r} is not served here; use {model.name!r}.", code="model_not_found"
            )

    def check_length(prompt_tokens: int, max_tokens: int) -> None:
        if prompt_tokens + max_tokens > model.context_window:
            raise ApiError(
                400,
                f"this model's context window is {model.context_window} tokens, but the prompt has "
                f"{prompt_tokens} and max_tokens asks for {max_tokens}; shorten the prompt or max_tokens.",
                code="context_length_exceeded",
            )

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    async def list_models() -> dict[str, Any]:
        fim = getattr(model, "fim", None)
        entry = {
            "id": model.name,
            "object": "model",
            "created": created,
            "owned_by": "stackcoder",
            "max_model_len": model.context_window,
            "family": getattr(model, "family", None),
            "fim_format": fim.name if fim is not None else None,
        }
        return {"object": "list", "data": [entry]}

    @app.post("/v1/completions", dependencies=[Depends(authorize)])
    async def completions(body: CompletionRequest):  # noqa: ANN202 - JSON or a stream
        check_model(body.model)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts:
            raise ApiError(400, "prompt is an empty list; send at least one prompt.")
        if body.suffix is not None:
            fim = getattr(model, "fim", None)
            if fim is None:
                raise ApiError(400, f"model {model.name!r} has no fill-in-the-middle tokens; send no suffix.")
            prompts = [build_fim_prompt(fim, p, body.suffix) for p in prompts]
        counts = [model.count_tokens(p) for p in prompts]
        for count in counts:
            check_length(count, body.max_tokens)
        stops = _stops(body.stop)
        jobs = [(i * body.n + j, p) for i, p in enumerate(prompts) for j in range(body.n)]

        def run(index: int, prompt: str, cancel: CancelToken) -> Iterator[str]:
            seed = None if body.seed is None else body.seed + index
            return model.stream(
                prompt,
                max_new_tokens=body.max_tokens,
                temperature=body.temperature,
                top_p=body.top_p,
                top_k=body.top_k,
                seed=seed,
                stop=stops,
                cancel=cancel,
            )

        rid = _new_id("cmpl")

        def chunk(index: int, text: str, finish: str | None) -> dict[str, Any]:
            choice = {"index": index, "text": text, "logprobs": None, "finish_reason": finish}
            return {
                "id": rid,
                "object": "text_completion",
                "created": int(time.time()),
                "model": model.name,
                "choices": [choice],
            }

        if body.stream:
            return _stream_response(rid, slots, jobs, run, chunk, body.max_tokens)

        choices, completion_tokens = [], 0
        async with slots:
            for index, prompt in jobs:
                text, finish, used = await _generate(rid, run, index, prompt, body.max_tokens)
                completion_tokens += used
                choices.append(chunk(index, text, finish)["choices"][0])
        usage = _usage(sum(counts) * body.n, completion_tokens)
        return {**chunk(0, "", None), "choices": choices, "usage": usage}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)])
    async def chat_completions(body: ChatRequest):  # noqa: ANN202 - JSON or a stream
        check_model(body.model)
        context = "\n\n".join(m.text() for m in body.messages if m.role == "system")
        messages = [{"role": m.role, "content": m.text()} for m in body.messages if m.role != "system"]
        if not messages or messages[-1]["role"] != "user":
            raise ApiError(
                400, "the last message must come from the user; end the conversation with a user turn."
            )
        options: dict[str, Any] = {"context": context}
        if body.max_tokens is not None:
            options["max_new_tokens"] = body.max_tokens
        if body.temperature is not None:
            options["temperature"] = body.temperature
        stops = _stops(body.stop)
        rid = _new_id("chatcmpl")

        def run(index: int, _prompt: str, cancel: CancelToken) -> Iterator[str]:
            return model.chat(messages, cancel=cancel, **options)

        def chunk(index: int, text: str, finish: str | None) -> dict[str, Any]:
            delta = {"role": "assistant", "content": text} if text or finish is None else {}
            return {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model.name,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
            }

        limit = body.max_tokens or 0
        if body.stream:
            return _stream_response(rid, slots, [(0, "")], run, chunk, limit, stops)
        async with slots:
            text, finish, used = await _generate(rid, run, 0, "", limit, stops)
        prompt_tokens = sum(model.count_tokens(m["content"]) for m in messages) + model.count_tokens(context)
        message = {"role": "assistant", "content": text}
        return {
            "id": rid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model.name,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": _usage(prompt_tokens, used),
        }

    return app


Runner = Callable[[int, str, CancelToken], Iterator[str]]
Chunker = Callable[[int, str, "str | None"], dict[str, Any]]


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _finish(used: int, limit: int) -> str:
    return "length" if limit and used >= limit else "stop"


async def _generate(
    rid: str, run: Runner, index: int, prompt: str, limit: int, stops: tuple[str, ...] = ()
) -> tuple[str, str, int]:
    """Run one generation to the end; returns its text, finish reason and pieces generated.

    The model yields about one piece per token, so pieces stand for generated tokens.
    """
    started = time.perf_counter()
    cancel = CancelToken()
    gate = StopMatcher(stops)
    parts: list[str] = []
    used = 0
    try:
        async with aclosing(_iterate(BlockingStream(lambda: run(index, prompt, cancel), cancel))) as pieces:
            async for piece in pieces:
                used += 1
                parts.append(gate.push(piece))
                if gate.stopped:
                    break
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    except EngineError as exc:
        raise ApiError(500, str(exc), "server_error") from None
    text = "".join(parts) + ("" if gate.stopped else gate.flush())
    finish = "stop" if gate.stopped else _finish(used, limit)
    log.info("%s choice %d: %d pieces, finish %s, %.0f ms", rid, index, used, finish, _ms(started))
    return text, finish, used


def _stream_response(
    rid: str,
    slots: asyncio.Semaphore,
    jobs: list[tuple[int, str]],
    run: Runner,
    chunk: Chunker,
    limit: int,
    stops: tuple[str, ...] = (),
) -> StreamingResponse:
    """Server-sent events: one chunk per piece, a final chunk with the finish reason, then [DONE].

    A client that disconnects cancels the generation at its next decoding step.
    """

    async def events() -> AsyncIterator[str]:
        async with slots:
            for index, prompt in jobs:
                started = time.perf_counter()
                cancel = CancelToken()
                gate = StopMatcher(stops)
                used = 0
                stream = BlockingStream(lambda i=index, p=prompt, c=cancel: run(i, p, c), cancel)
                try:
                    async with aclosing(_iterate(stream)) as pieces:
                        async for piece in pieces:
                            used += 1
                            out = gate.push(piece)
                            if out:
                                yield _sse(chunk(index, out, None))
                            if gate.stopped:
                                break
                    if not gate.stopped and (rest := gate.flush()):
                        yield _sse(chunk(index, rest, None))
                except (EngineError, ValueError) as exc:
                    yield _sse(_error_body(str(exc), "server_error"))
                    return
                finish = "stop" if gate.stopped else _finish(used, limit)
                log.info(
                    "%s choice %d streamed: %d pieces, finish %s, %.0f ms",
                    rid,
                    index,
                    used,
                    finish,
                    _ms(started),
                )
                yield _sse(chunk(index, "", finish))
            yield _sse("[DONE]")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# --------------------------------------------------------------------------- binding


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to expose the API beyond this machine without a token."""
    if not is_loopback(host) and not token:
        raise EngineError(
            f"refusing to serve on {host} without a token, since anyone who can reach it could use the "
            "model; pass --token (or set STACKCODER_API_KEY), or bind to 127.0.0.1."
        )


def serve(
    model: Any,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    max_concurrency: int = 1,
) -> None:
    """Serve ``model`` until interrupted (blocking)."""
    import uvicorn

    check_bind(host, token)
    app = create_app(model, token=token, max_concurrency=max_concurrency)
    log.info("serving %s on http://%s:%d/v1 (token %s)", model.name, host, port, "on" if token else "off")
    uvicorn.run(app, host=host, port=port, log_level="info")
