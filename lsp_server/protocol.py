"""The server's custom messages and commands, declared once (mirrored by vscode-extension/src/protocol.ts).

Params arrive as plain JSON objects; each ``parse_*`` function validates one at the boundary and
raises :class:`InvalidParamsError` (answered as JSON-RPC InvalidParams) naming the bad field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lsprotocol import types

from lsp_server.errors import InvalidParamsError

__all__ = [
    "CHAT",
    "EXPLAIN",
    "ATTRIBUTION",
    "STATUS",
    "WARM_CHAT",
    "WARM_CURSOR",
    "CACHED_COMPLETION",
    "CMD_INFILL",
    "CMD_EXPLAIN",
    "CMD_CHECK_PROVENANCE",
    "CMD_DID_ACCEPT",
    "CMD_MARK_MINE",
    "CMD_DID_INSERT",
    "COMMANDS",
    "DIAGNOSTIC_SOURCE",
    "ChatParams",
    "ExplainParams",
    "AcceptedCompletion",
    "CursorParams",
    "parse_chat",
    "parse_warm_chat",
    "parse_cursor",
    "parse_inline_params",
    "parse_explain",
    "parse_attribution",
    "parse_uri_range",
    "parse_accepted",
    "parse_attribution_params",
    "parse_mark_mine",
    "parse_inserted",
    "InsertedCode",
]

CHAT = "stackcoder/chat"
EXPLAIN = "stackcoder/explain"
ATTRIBUTION = "stackcoder/attribution"
STATUS = "stackcoder/status"
# Notification: the cursor settled at a new place; the server computes the completion there in
# idle time, so the first keystroke finds its prompt processed.
WARM_CURSOR = "stackcoder/warmCursor"
WARM_CHAT = "stackcoder/warmChat"
# Request with textDocument/inlineCompletion's params and result, answered from the completion
# cache alone (never the model): the extension asks it at once and waits out its debounce only
# when nothing is cached.
CACHED_COMPLETION = "stackcoder/cachedCompletion"

CMD_INFILL = "stackcoder.infill"
CMD_EXPLAIN = "stackcoder.explain"
CMD_CHECK_PROVENANCE = "stackcoder.checkProvenance"
CMD_DID_ACCEPT = "stackcoder.didAcceptCompletion"
# Quick fix on a provenance diagnostic: [uri, scope ("finding"|"path"|"repository"), match].
CMD_MARK_MINE = "stackcoder.markMine"
# Code inserted from elsewhere (a chat answer): [{uri, text, range, origin}]; checked, published
# as findings and, when it matches, written to the workspace's reference log.
CMD_DID_INSERT = "stackcoder.didInsertCode"

# Code-action commands offered on a selection: command -> title shown by the editor.
COMMANDS: dict[str, str] = {
    CMD_INFILL: "StackCoder: fill in the selection",
    CMD_EXPLAIN: "StackCoder: explain the selection",
    CMD_CHECK_PROVENANCE: "StackCoder: check provenance of the selection",
}

DIAGNOSTIC_SOURCE = "stackcoder"
ROLES = ("user", "assistant")
MAX_TEXT_CHARS = 2_000_000  # larger chat/attribution payloads are refused, not truncated silently
# A chat's conversation: more is refused (the model sees only its newest turns anyway).
MAX_CHAT_MESSAGES = 200
MAX_MESSAGE_CHARS = 100_000
MAX_CHAT_CHARS = 400_000  # all messages together


def _field(obj: Any, name: str, where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise InvalidParamsError(f"{where} must be an object; send it as the protocol describes.")
    return obj.get(name)


def _string(value: Any, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidParamsError(f"{where} must be a string; send it as the protocol describes.")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidParamsError(f"{where} is longer than {MAX_TEXT_CHARS} characters; send a smaller text.")
    return value


def _token(value: Any) -> str | int | None:
    if value is None or (isinstance(value, (str, int)) and not isinstance(value, bool)):
        return value
    raise InvalidParamsError(
        "partialResultToken must be a string or an integer; send it as the protocol describes."
    )


def _position(value: Any, where: str) -> types.Position:
    line, character = _field(value, "line", where), _field(value, "character", where)
    for name, v in (("line", line), ("character", character)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise InvalidParamsError(f"{where}.{name} must be an integer >= 0; send a valid position.")
    return types.Position(line=line, character=character)


def _range(value: Any, where: str) -> types.Range:
    return types.Range(
        start=_position(_field(value, "start", where), f"{where}.start"),
        end=_position(_field(value, "end", where), f"{where}.end"),
    )


@dataclass(frozen=True)
class ChatContext:
    """What the editor shows next to the conversation."""

    uri: str | None = None
    selection: str | None = None
    file_text: str | None = None
    language_id: str | None = None


@dataclass(frozen=True)
class ChatParams:
    """`stackcoder/chat` params."""

    messages: list[dict[str, str]]
    context: ChatContext = field(default_factory=ChatContext)
    partial_result_token: str | int | None = None


@dataclass(frozen=True)
class ExplainParams:
    """`stackcoder/explain` params."""

    uri: str
    range: types.Range
    partial_result_token: str | int | None = None


@dataclass(frozen=True)
class AcceptedCompletion:
    """The argument of `stackcoder.didAcceptCompletion`."""

    id: str
    uri: str
    text: str
    range: types.Range


@dataclass(frozen=True)
class CursorParams:
    """`stackcoder/warmCursor` params: a document and a cursor position in it."""

    uri: str
    position: types.Position


def parse_cursor(params: Any) -> CursorParams:
    """Validate `stackcoder/warmCursor` params ({textDocument: {uri}, position})."""
    doc = _field(params, "textDocument", "params")
    uri = _string(_field(doc, "uri", "params.textDocument"), "params.textDocument.uri")
    return CursorParams(
        uri=uri or "", position=_position(_field(params, "position", "params"), "params.position")
    )


def parse_inline_params(params: Any) -> types.InlineCompletionParams:
    """Validate `stackcoder/cachedCompletion` params (those of textDocument/inlineCompletion)."""
    from lsprotocol import converters

    try:
        return converters.get_converter().structure(params, types.InlineCompletionParams)
    except Exception:
        raise InvalidParamsError(
            "params must be those of textDocument/inlineCompletion: {textDocument, position, context}."
        ) from None


def parse_warm_chat(params: Any) -> ChatParams:
    """Validate `stackcoder/warmChat` params: those of `stackcoder/chat` without the question
    (``messages`` is the conversation so far, possibly empty)."""
    return parse_chat(params, question=False)


def parse_chat(params: Any, *, question: bool = True) -> ChatParams:
    """Validate `stackcoder/chat` params."""
    raw_messages = _field(params, "messages", "params")
    if raw_messages is None and not question:
        raw_messages = []
    if not isinstance(raw_messages, list) or (question and not raw_messages):
        raise InvalidParamsError("params.messages must be a non-empty list; send the conversation so far.")
    if len(raw_messages) > MAX_CHAT_MESSAGES:
        raise InvalidParamsError(
            f"params.messages has {len(raw_messages)} messages, more than the {MAX_CHAT_MESSAGES} a chat "
            "takes; clear the chat history or send only the newest turns."
        )
    messages = []
    total = 0
    for i, m in enumerate(raw_messages):
        role = _field(m, "role", f"messages[{i}]")
        if role not in ROLES:
            raise InvalidParamsError(
                f"messages[{i}].role must be one of {', '.join(ROLES)}; fix the message."
            )
        content = _string(_field(m, "content", f"messages[{i}]"), f"messages[{i}].content") or ""
        if len(content) > MAX_MESSAGE_CHARS:
            raise InvalidParamsError(
                f"messages[{i}].content has {len(content)} characters, more than the {MAX_MESSAGE_CHARS} "
                "a chat message may have; send a shorter message."
            )
        total += len(content)
        if total > MAX_CHAT_CHARS:
            raise InvalidParamsError(
                f"params.messages hold more than {MAX_CHAT_CHARS} characters together; clear the chat "
                "history or send only the newest turns."
            )
        messages.append({"role": role, "content": content})
    raw_ctx = _field(params, "context", "params")
    ctx = ChatContext()
    if raw_ctx is not None:
        ctx = ChatContext(
            uri=_string(_field(raw_ctx, "uri", "context"), "context.uri", optional=True),
            selection=_string(_field(raw_ctx, "selection", "context"), "context.selection", optional=True),
            file_text=_string(_field(raw_ctx, "fileText", "context"), "context.fileText", optional=True),
            language_id=_string(
                _field(raw_ctx, "languageId", "context"), "context.languageId", optional=True
            ),
        )
    return ChatParams(messages, ctx, _token(_field(params, "partialResultToken", "params")))


def parse_explain(params: Any) -> ExplainParams:
    """Validate `stackcoder/explain` params."""
    doc = _field(params, "textDocument", "params")
    uri = _string(_field(doc, "uri", "params.textDocument"), "params.textDocument.uri")
    return ExplainParams(
        uri=uri or "",
        range=_range(_field(params, "range", "params"), "params.range"),
        partial_result_token=_token(_field(params, "partialResultToken", "params")),
    )


def parse_attribution(params: Any) -> str:
    """Validate `stackcoder/attribution` params and return the text to check."""
    return _string(_field(params, "text", "params"), "params.text") or ""


def parse_uri_range(arguments: Any) -> tuple[str, types.Range]:
    """Validate the `[uri, range]` arguments of the code-action commands."""
    if not isinstance(arguments, (list, tuple)) or len(arguments) < 2:
        raise InvalidParamsError(
            "The command takes the arguments [uri, range]; pass the document and selection."
        )
    return _string(arguments[0], "arguments[0]") or "", _range(arguments[1], "arguments[1]")


def parse_accepted(arguments: Any) -> AcceptedCompletion:
    """Validate the argument of `stackcoder.didAcceptCompletion`."""
    if not isinstance(arguments, (list, tuple)) or not arguments:
        raise InvalidParamsError("stackcoder.didAcceptCompletion takes one argument {id, uri, text, range}.")
    arg = arguments[0]
    return AcceptedCompletion(
        id=str(_field(arg, "id", "arguments[0]")),
        uri=_string(_field(arg, "uri", "arguments[0]"), "arguments[0].uri") or "",
        text=_string(_field(arg, "text", "arguments[0]"), "arguments[0].text") or "",
        range=_range(_field(arg, "range", "arguments[0]"), "arguments[0].range"),
    )


def parse_attribution_params(params: Any) -> tuple[str, str | None]:
    """Validate `stackcoder/attribution` params: the text, and the optional document ``uri`` whose
    workspace folder the report is read for (own code left out, license fit added)."""
    return parse_attribution(params), _string(_field(params, "uri", "params"), "params.uri", optional=True)


MINE_SCOPES = ("finding", "path", "repository")


def parse_mark_mine(arguments: Any) -> tuple[str, str, dict[str, Any]]:
    """Validate the `[uri, scope, match]` arguments of `stackcoder.markMine`."""
    if not isinstance(arguments, (list, tuple)) or len(arguments) < 3:
        raise InvalidParamsError(
            "stackcoder.markMine takes [uri, scope, match]; pass the document, the scope and the finding's match."
        )
    uri = _string(arguments[0], "arguments[0]") or ""
    scope = arguments[1]
    if scope not in MINE_SCOPES:
        raise InvalidParamsError(f"arguments[1] must be one of {', '.join(MINE_SCOPES)}.")
    match = arguments[2]
    if not isinstance(match, Mapping) or not isinstance(match.get("repo"), str):
        raise InvalidParamsError("arguments[2] must be the finding's match ({repo, path, ...}).")
    return uri, scope, dict(match)


@dataclass(frozen=True)
class InsertedCode:
    """The argument of `stackcoder.didInsertCode`."""

    uri: str
    text: str
    range: types.Range
    origin: str  # where the code came from, e.g. "chat"


def parse_inserted(arguments: Any) -> InsertedCode:
    """Validate the argument of `stackcoder.didInsertCode`."""
    if not isinstance(arguments, (list, tuple)) or not arguments:
        raise InvalidParamsError("stackcoder.didInsertCode takes one argument {uri, text, range, origin}.")
    arg = arguments[0]
    origin = _string(_field(arg, "origin", "arguments[0]"), "arguments[0].origin", optional=True)
    return InsertedCode(
        uri=_string(_field(arg, "uri", "arguments[0]"), "arguments[0].uri") or "",
        text=_string(_field(arg, "text", "arguments[0]"), "arguments[0].text") or "",
        range=_range(_field(arg, "range", "arguments[0]"), "arguments[0].range"),
        origin=(origin or "inserted")[:40],
    )


def to_plain(value: Any) -> Any:
    """Turn attrs/lsprotocol objects (and namespaces) into plain JSON values."""
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if hasattr(value, "_asdict"):  # pygls reads untyped JSON objects as named tuples
        return {k: to_plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "__attrs_attrs__"):
        from lsprotocol import converters

        return converters.get_converter().unstructure(value)
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: to_plain(v) for k, v in vars(value).items()}
    return value
