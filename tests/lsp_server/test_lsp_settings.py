"""Settings resolved from the client's `stackcoder` section."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_server.errors import SettingsError
from lsp_server.settings import Settings, parse_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_defaults_follow_the_contract() -> None:
    s = parse_settings(None)
    assert s.model.path is None and s.model.backend == "auto" and s.model.threads == 0
    assert s.completion.max_new_tokens == 64 and s.completion.temperature == 0.0
    assert s.completion.max_prompt_tokens == 1536 and s.completion.cross_file_context is True
    assert s.completion.debounce_ms == 150
    assert s.provenance.enabled and s.provenance.index_path is None and s.provenance.policy == "mark"
    assert s.chat.max_new_tokens == 512 and s.chat.temperature == 0.2


def test_initialization_options_wrapper_and_partial_sections_merge_over_base() -> None:
    s = parse_settings(
        {"stackcoder": {"model": {"path": "/m", "backend": "transformers"}, "chat": {"temperature": 0}}}
    )
    assert s.model.path == "/m" and s.model.backend == "transformers"
    assert s.chat.temperature == 0.0 and isinstance(s.chat.temperature, float)
    s2 = parse_settings({"completion": {"maxNewTokens": 16}}, s)
    assert s2.model.path == "/m" and s2.completion.max_new_tokens == 16


def test_round_trip_through_client_json() -> None:
    s = parse_settings({"provenance": {"policy": "suppress", "indexPath": "/idx"}, "model": {"threads": 2}})
    assert parse_settings(s.to_json()) == s
    assert s.to_json()["completion"]["maxPromptTokens"] == 1536


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"model": {"backend": "onnx"}}, "stackcoder.model.backend"),
        ({"completion": {"maxNewTokens": 0}}, "stackcoder.completion.maxNewTokens"),
        ({"completion": {"maxNewTokens": "64"}}, "stackcoder.completion.maxNewTokens"),
        ({"completion": {"enabled": 1}}, "stackcoder.completion.enabled"),
        ({"provenance": {"policy": "hide"}}, "stackcoder.provenance.policy"),
        ({"chat": {"temperature": -1}}, "stackcoder.chat.temperature"),
        ({"model": "x"}, "stackcoder.model"),
    ],
)
def test_bad_values_name_the_setting(raw: dict, key: str) -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings(raw)
    assert key in str(err.value)


def test_unknown_keys_are_ignored() -> None:
    assert parse_settings({"model": {"futureKey": 1}, "newSection": {}}) == Settings()


def test_folder_settings_resolve_over_the_global_ones_but_keep_the_global_model() -> None:
    from lsp_server.settings import folder_of, for_folder

    base = parse_settings({"model": {"path": "/m"}, "completion": {"maxNewTokens": 20}})
    folder = for_folder({"model": {"path": "/other"}, "completion": {"enabled": False}}, base)
    assert folder.completion.enabled is False and folder.completion.max_new_tokens == 20
    assert folder.model == base.model
    roots = {"a": "/ws/app", "b": "/ws/app/lib", "c": "/ws/application"}
    assert folder_of("/ws/app/lib/x.py", roots) == "b"
    assert folder_of("/ws/app/x.py", roots) == "a"
    assert folder_of("/ws/application/x.py", roots) == "c"
    assert folder_of("/elsewhere/x.py", roots) is None and folder_of(None, roots) is None


def test_the_extensions_schema_and_the_servers_settings_agree() -> None:
    """package.json's contributed settings are the server's: the same names, defaults and enum
    values, and every value the settings UI allows is accepted (settings.ts is checked against
    package.json by the extension's own tests)."""
    import dataclasses
    import json

    from lsp_server.settings import SECTIONS

    package = json.loads((REPO_ROOT / "vscode-extension" / "package.json").read_text(encoding="utf-8"))
    properties = package["contributes"]["configuration"]["properties"]
    contributed = {
        name.removeprefix("stackcoder."): schema
        for name, schema in properties.items()
        if name.removeprefix("stackcoder.").split(".")[0] in SECTIONS
    }
    fields = {
        f"{section}.{spec.metadata['key']}": spec
        for section, (_attr, cls) in SECTIONS.items()
        for spec in dataclasses.fields(cls)
    }
    assert sorted(contributed) == sorted(fields)
    for key, spec in fields.items():
        schema = contributed[key]
        assert schema["default"] == spec.default, key
        assert tuple(schema.get("enum", ())) == spec.metadata.get("choices", ()), key
        for bound in ("minimum", "maximum"):
            if bound in schema:
                assert spec.metadata["check"](schema[bound]), f"{key} = {schema[bound]}"


def test_the_backend_setting_offers_every_engine_backend() -> None:
    from engine.backends import BACKENDS as ENGINE_BACKENDS
    from engine.backends import LOCAL_BACKENDS
    from engine.model import BACKEND_LOADERS
    from lsp_server.settings import BACKENDS

    assert set(BACKENDS) == set(BACKEND_LOADERS) | {"http"}  # http: a remote server, no local loader
    assert set(LOCAL_BACKENDS) == set(BACKEND_LOADERS) and set(ENGINE_BACKENDS) == set(BACKENDS)
