import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { BACKENDS, DEFAULT_SETTINGS, POLICIES, SERVER_SETTING_KEYS, SettingError, readServerSettings } from "../src/settings";

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

test("unset keys give the contract's defaults", () => {
  assert.deepEqual(readServerSettings(reader({})), DEFAULT_SETTINGS);
  assert.deepEqual(DEFAULT_SETTINGS.completion, {
    enabled: true, maxNewTokens: 64, temperature: 0, maxPromptTokens: 1536, crossFileContext: true, debounceMs: 150, prefetch: true,
    warmOnCursorMove: true, contextMaxFiles: 5000, contextMaxMegabytes: 50,
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

test("package.json and settings.ts agree on every server setting: names, defaults, enums and ranges", () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
  const properties: Record<string, { default?: unknown; enum?: unknown[]; minimum?: number; maximum?: number }> =
    pkg.contributes.configuration.properties;
  const sections = Object.keys(DEFAULT_SETTINGS);
  const contributed = Object.keys(properties)
    .map((name) => name.slice("stackcoder.".length))
    .filter((key) => sections.includes(key.split(".")[0]));
  assert.deepEqual([...contributed].sort(), [...SERVER_SETTING_KEYS].sort());
  const enums: Record<string, readonly string[]> = { "model.backend": BACKENDS, "provenance.policy": POLICIES };
  for (const key of SERVER_SETTING_KEYS) {
    const schema = properties[`stackcoder.${key}`];
    const [group, name] = key.split(".");
    const fallback = (DEFAULT_SETTINGS as unknown as Record<string, Record<string, unknown>>)[group][name];
    assert.deepEqual(schema.default, fallback, `default of ${key}`);
    assert.deepEqual(schema.enum, enums[key], `enum of ${key}`);
    // every value the settings UI allows is read, and the values just outside its range are rejected
    for (const [bound, step] of [[schema.minimum, -1], [schema.maximum, 1]] as const) {
      if (bound === undefined) continue;
      const at = readServerSettings(reader({ [key]: bound })) as unknown as Record<string, Record<string, unknown>>;
      assert.equal(at[group][name], bound, `${key} = ${bound}`);
      assert.throws(() => readServerSettings(reader({ [key]: bound + step })), SettingError, `${key} = ${bound + step}`);
    }
  }
});
