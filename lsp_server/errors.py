"""The language server's error hierarchy: each message is one sentence saying what is wrong and what to do."""

from __future__ import annotations

__all__ = [
    "ServerError",
    "SettingsError",
    "InvalidParamsError",
    "ModelUnavailableError",
    "IndexUnavailableError",
]


class ServerError(Exception):
    """Base class of every error the language server raises on purpose."""


class SettingsError(ServerError):
    """A `stackcoder.*` setting has the wrong type or an unknown value."""


class InvalidParamsError(ServerError):
    """The parameters of a `stackcoder/...` request do not follow the protocol."""


class ModelUnavailableError(ServerError):
    """The request needs the code model, which is not loaded."""


class IndexUnavailableError(ServerError):
    """The request needs the attribution index, which is not loaded."""
