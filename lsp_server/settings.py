"""Typed settings of the server, resolved from the client's `stackcoder` section.

The same JSON object arrives through ``initializationOptions`` (``{"stackcoder": SETTINGS}``),
``workspace/didChangeConfiguration`` and ``workspace/configuration``. Missing keys keep their
defaults; a value of the wrong type raises :class:`SettingsError` naming the flattened VS Code key
(``stackcoder.completion.maxNewTokens``) so the user knows which setting to fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.backends import BACKENDS as ENGINE_BACKENDS
from lsp_server.errors import SettingsError

__all__ = [
    "for_folder",
    "folder_of",
    "ModelSettings",
    "CompletionSettings",
    "ProvenanceSettings",
    "ChatSettings",
    "Settings",
    "parse_settings",
]

BACKENDS = ENGINE_BACKENDS  # engine.backends names them once
POLICIES = ("mark", "suppress", "suppressIncompatible")


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _int_at_least(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _float_at_least(low: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= low


def _one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda v: v in choices


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _optional_string_list(value: Any) -> bool:
    return value is None or (
        isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value)
    )


def _setting(key: str, default: Any, check: Callable[[Any], bool], expected: str) -> Any:
    """A dataclass field carrying its JSON key, a validity check and the expected form for errors."""
    return field(default=default, metadata={"key": key, "check": check, "expected": expected})


def _choice(key: str, default: str, choices: tuple[str, ...]) -> Any:
    """A setting that takes one of ``choices`` (kept in its metadata: the schema test compares them)."""
    return field(
        default=default,
        metadata={
            "key": key,
            "check": _one_of(*choices),
            "expected": f"one of {', '.join(choices)}",
            "choices": choices,
        },
    )


@dataclass(frozen=True)
class ModelSettings:
    """Which code model to load and how."""

    path: str | None = _setting("path", None, _optional_str, "a folder path or null")
    backend: str = _choice("backend", "auto", BACKENDS)
    threads: int = _setting("threads", 0, _int_at_least(0), "an integer >= 0 (0 = all cores)")
    url: str | None = _setting("url", None, _optional_str, "a URL or null")
    # chat and explain: another model, or None for the completion model on a runtime of its own
    chat_path: str | None = _setting("chatPath", None, _optional_str, "a model name, a path or null")


@dataclass(frozen=True)
class CompletionSettings:
    """Inline completion."""

    enabled: bool = _setting("enabled", True, _bool, "true or false")
    max_new_tokens: int = _setting("maxNewTokens", 64, _int_at_least(1), "an integer >= 1")
    temperature: float = _setting("temperature", 0.0, _float_at_least(0.0), "a number >= 0")
    max_prompt_tokens: int = _setting("maxPromptTokens", 1536, _int_at_least(16), "an integer >= 16")
    cross_file_context: bool = _setting("crossFileContext", True, _bool, "true or false")
    debounce_ms: int = _setting("debounceMs", 150, _int_at_least(0), "an integer >= 0")
    prefetch: bool = _setting("prefetch", True, _bool, "true or false")
    warm_on_cursor_move: bool = _setting("warmOnCursorMove", True, _bool, "true or false")
    # the workspace index behind cross-file context reads at most this many files and megabytes
    context_max_files: int = _setting("contextMaxFiles", 5_000, _int_at_least(1), "an integer >= 1")
    context_max_megabytes: int = _setting("contextMaxMegabytes", 50, _int_at_least(1), "an integer >= 1")


@dataclass(frozen=True)
class ProvenanceSettings:
    """The attribution check of generated and selected code."""

    enabled: bool = _setting("enabled", True, _bool, "true or false")
    index_path: str | None = _setting("indexPath", None, _optional_str, "a folder path or null")
    policy: str = _choice("policy", "mark", POLICIES)
    # repositories ("owner/name") or paths ("owner/name:glob") that are the user's own code
    mine: list[str] | None = _setting(
        "mine",
        None,
        _optional_string_list,
        'a list of "owner/name" or "owner/name:path-glob" strings, or null',
    )


@dataclass(frozen=True)
class ChatSettings:
    """Chat and explain answers."""

    max_new_tokens: int = _setting("maxNewTokens", 512, _int_at_least(1), "an integer >= 1")
    temperature: float = _setting("temperature", 0.2, _float_at_least(0.0), "a number >= 0")


# Sections of SETTINGS: JSON key -> (attribute of Settings, dataclass).
SECTIONS: dict[str, tuple[str, type]] = {
    "model": ("model", ModelSettings),
    "completion": ("completion", CompletionSettings),
    "provenance": ("provenance", ProvenanceSettings),
    "chat": ("chat", ChatSettings),
}


@dataclass(frozen=True)
class Settings:
    """Every setting of the server."""

    model: ModelSettings = field(default_factory=ModelSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    provenance: ProvenanceSettings = field(default_factory=ProvenanceSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)

    def to_json(self) -> dict[str, dict[str, Any]]:
        """The settings in the client's JSON form (camelCase keys)."""
        out: dict[str, dict[str, Any]] = {}
        for key, (attr, _cls) in SECTIONS.items():
            section = getattr(self, attr)
            out[key] = {f.metadata["key"]: getattr(section, f.name) for f in dataclasses.fields(section)}
        return out


def _parse_section(name: str, cls: type, raw: Any, base: Any) -> Any:
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        raise SettingsError(f"Setting stackcoder.{name} must be an object; fix it in your editor's settings.")
    by_key = {f.metadata["key"]: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        spec = by_key.get(key)
        if spec is None:
            continue  # keys of newer clients are ignored, never fatal
        if (
            isinstance(value, float)
            and value.is_integer()
            and spec.metadata["expected"].startswith("an integer")
        ):
            value = int(value)
        if not spec.metadata["check"](value):
            raise SettingsError(
                f"Setting stackcoder.{name}.{key} is {value!r} but must be {spec.metadata['expected']}; "
                "fix it in your editor's settings."
            )
        values[spec.name] = float(value) if isinstance(spec.default, float) else value
    return dataclasses.replace(base, **values)


def parse_settings(raw: Any, base: Settings | None = None) -> Settings:
    """Resolve a `stackcoder` settings object over ``base`` (defaults when None).

    Accepts either the section itself or an object holding it under ``"stackcoder"``.
    Raises SettingsError for a value of the wrong type; unknown keys are ignored.
    """
    base = base or Settings()
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        raise SettingsError(
            "The stackcoder settings must be a JSON object; fix them in your editor's settings."
        )
    if "stackcoder" in raw:
        return parse_settings(raw["stackcoder"], base)
    sections = {}
    for key, (attr, cls) in SECTIONS.items():
        sections[attr] = _parse_section(key, cls, raw.get(key), getattr(base, attr))
    return Settings(**sections)


def for_folder(raw: Any, base: Settings) -> Settings:
    """A workspace folder's settings: its `stackcoder` section over ``base``. The model section
    stays ``base``'s: one server process serves one model."""
    return dataclasses.replace(parse_settings(raw, base), model=base.model)


def folder_of(path: str | None, folders: Mapping[str, str]) -> str | None:
    """The key of the innermost folder (key -> folder path) holding ``path``, or None."""
    if not path:
        return None
    best, best_len = None, -1
    for key, root in folders.items():
        root = root.rstrip("/\\") or root
        inside = path == root or path.startswith(root + "/") or path.startswith(root + "\\")
        if inside and len(root) > best_len:
            best, best_len = key, len(root)
    return best
