"""JSON-RPC hardening on top of pygls' protocol.

* Requests before ``initialize`` are answered with ServerNotInitialized (-32002), as LSP requires;
  notifications before it are dropped (``exit`` still works).
* A request whose params do not match the method's schema is answered with InvalidParams naming
  the method, instead of being dropped (which would leave the client waiting forever).
* With a required token (``serve --tcp``), ``initialize`` must carry it as
  ``initializationOptions.token``; otherwise the client gets an error and is disconnected.
* Server-side errors are logged; they are not shown to the user as pop-ups (the server reports
  user-facing problems itself, once, through ``window/showMessage``).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcServerNotInitialized
from pygls.protocol import LanguageServerProtocol

__all__ = ["HardenedProtocol"]

log = logging.getLogger(__name__)

ALLOWED_BEFORE_INIT = frozenset({types.INITIALIZE, types.EXIT, types.CANCEL_REQUEST})


@attrs.define
class _UnreadableRequest:
    """A request whose params could not be read; answered with an error."""

    id: Any
    method: str
    jsonrpc: str
    error: JsonRpcException


class HardenedProtocol(LanguageServerProtocol):
    """LanguageServerProtocol that answers every request, even malformed or premature ones."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_received = False
        self.required_token: str | None = None  # set by serve_tcp when clients must authenticate

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Structure a message, turning unreadable request params into an error to answer."""
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and isinstance(data.get("method"), str):
                method = data["method"]
                error = JsonRpcInvalidParams(
                    f"Invalid params for {method}; send them as the LSP specification describes."
                )
                return _UnreadableRequest(
                    id=data["id"], method=method, jsonrpc=str(data.get("jsonrpc")), error=error
                )
            raise exc

    def handle_message(self, message: Any) -> None:
        """Dispatch one message, enforcing the initialize handshake."""
        if isinstance(message, _UnreadableRequest):
            log.warning("request %r (%s) has invalid params", message.id, message.method)
            self._send_response(message.id, None, message.error.to_response_error())
            return
        method = getattr(message, "method", None)
        if method == types.INITIALIZE:
            if not self._authenticated(message):
                return
            self.initialize_received = True
        elif not self.initialize_received and method is not None and method not in ALLOWED_BEFORE_INIT:
            if getattr(message, "id", None) is not None:
                error = JsonRpcServerNotInitialized(
                    f"The server is not initialized; send initialize before {method}."
                )
                self._send_response(message.id, None, error.to_response_error())
            else:
                log.warning("notification %s before initialize dropped", method)
            return
        super().handle_message(message)

    def _authenticated(self, message: Any) -> bool:
        """Check (and strip) ``initializationOptions.token``; answer and disconnect a client without it."""
        options = getattr(message.params, "initialization_options", None)
        given = options.pop("token", None) if isinstance(options, dict) else None
        if self.required_token is None:
            return True
        if isinstance(given, str) and hmac.compare_digest(given.encode(), self.required_token.encode()):
            return True
        log.warning("initialize without the right token: disconnecting the client")
        error = JsonRpcException(
            "This server requires a token: send it as initializationOptions.token in initialize.",
            code=-32600,
        )
        self._send_response(message.id, None, error.to_response_error())
        writer = self.writer
        if writer is not None and hasattr(writer, "close"):
            writer.close()
        return False
