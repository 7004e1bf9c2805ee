import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { DEFAULT_SETTINGS, SERVER_SETTING_KEYS, SettingError, readServerSettings } from "../src/settings";

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

test("unset keys give the contract's defaults", () => {
  assert.deepEqual(readServerSettings(reader({})), DEFAULT_SETTINGS);
  assert.deepEqual(DEFAULT_SETTINGS.completion, {
    enabled: true, maxNewTokens: 64, temperature: 0, maxPromptTokens: 1536, crossFileContext: true, debounceMs: 150, prefetch: true,
    warmOnCursorMove: true,
  });
});

test("flat keys land in the nested object; blank paths are null", () => {
  const s = readServerSettings(
    reader({ "model.path": " /m ", "model.backend": "transformers", "provenance.indexPath": "", "provenance.policy": "suppress", "chat.temperature": 0.7 }),
  );
  assert.equal(s.model.path, "/m");
  assert.equal(s.model.backend, "transformers");
  assert.equal(s.provenance.indexPath, null);
  assert.equal(s.provenance.policy, "suppress");
  assert.equal(s.chat.temperature, 0.7);
});

test("unknown enum values name the key and the known values", () => {
  assert.throws(() => readServerSettings(reader({ "model.backend": "onnx" })), (e: unknown) => {
    assert.ok(e instanceof SettingError);
    assert.equal(e.key, "model.backend");
    assert.match(e.message, /ct2, transformers, llamacpp, http/);
    return true;
  });
});

test("out-of-range and mistyped numbers are rejected", () => {
  assert.throws(() => readServerSettings(reader({ "completion.maxNewTokens": 0 })), /completion.maxNewTokens/);
  assert.throws(() => readServerSettings(reader({ "model.threads": 1.5 })), /integer/);
  assert.throws(() => readServerSettings(reader({ "completion.enabled": "yes" })), /true or false/);
});

test("the http backend needs a URL", () => {
  assert.throws(() => readServerSettings(reader({ "model.backend": "http" })), /model.url/);
  const s = readServerSettings(reader({ "model.backend": "http", "model.url": "http://127.0.0.1:8000/v1" }));
  assert.equal(s.model.url, "http://127.0.0.1:8000/v1");
});

test("every setting key is contributed in package.json", () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
  const contributed = Object.keys(pkg.contributes.configuration.properties);
  for (const key of SERVER_SETTING_KEYS) assert.ok(contributed.includes(`stackcoder.${key}`), key);
});

test("the backend setting offers what the server accepts, auto by default", () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
  const backend = pkg.contributes.configuration.properties["stackcoder.model.backend"];
  assert.deepEqual(backend.enum, ["auto", "torch", "ct2", "transformers", "llamacpp", "http"]);
  assert.equal(backend.enumDescriptions.length, backend.enum.length);
  assert.equal(backend.default, DEFAULT_SETTINGS.model.backend);
  assert.equal(DEFAULT_SETTINGS.model.backend, "auto");
  assert.equal(readServerSettings(reader({ "model.backend": "torch" })).model.backend, "torch");
});
