import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { needsConsent, resolveServer } from "../src/bootstrap";
import { MACHINE_KEYS, readServerSettings, userLevelReader } from "../src/settings";

const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
const properties: Record<string, { scope?: string }> = pkg.contributes.configuration.properties ?? {};

test("every setting that picks a binary, its arguments, a model or a URL is machine-scoped and restricted", () => {
  for (const key of MACHINE_KEYS) {
    assert.equal(properties[`stackcoder.${key}`]?.scope, "machine", key);
    assert.ok(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.includes(`stackcoder.${key}`), key);
  }
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, "limited");
  for (const [key, schema] of Object.entries(properties)) {
    if (/path|url|args|backend/i.test(key)) assert.ok(schema.scope?.startsWith("machine"), `${key} is not machine-scoped`);
  }
});

test("a workspace's value for a machine key is ignored, the user's is used", () => {
  const levels: Record<string, { defaultValue?: unknown; globalValue?: unknown; workspaceValue?: unknown; workspaceFolderValue?: unknown }> = {
    "model.backend": { defaultValue: "auto", workspaceValue: "http" },
    "model.url": { defaultValue: null, workspaceFolderValue: "http://attacker.example/v1" },
    "server.path": { defaultValue: null, globalValue: "/usr/local/bin/stackcoder", workspaceValue: "/tmp/evil" },
    "completion.maxNewTokens": { defaultValue: 64, workspaceValue: 32 },
  };
  const resolved = (key: string) => {
    const l = levels[key];
    return l ? (l.workspaceFolderValue ?? l.workspaceValue ?? l.globalValue ?? l.defaultValue) : undefined;
  };
  const read = userLevelReader((key) => levels[key], resolved);
  const settings = readServerSettings(read);
  assert.equal(settings.model.backend, "auto");
  assert.equal(settings.model.url, null);
  assert.equal(read("server.path"), "/usr/local/bin/stackcoder");
  assert.equal(settings.completion.maxNewTokens, 32); // harmless settings still follow the workspace
});

test("a stackcoder found in or above a workspace folder needs consent; one above the extension does not", () => {
  const files = ["/ws/.venv/bin/stackcoder", "/ext-repo/.venv/bin/stackcoder"];
  const isExecutable = (f: string) => files.includes(f);
  const base = { settingPath: null, extraArgs: [], env: {}, platform: "linux" as const, isExecutable };
  const fromWorkspace = resolveServer({ ...base, searchRoots: ["/elsewhere"], workspaceRoots: ["/ws/project"] });
  assert.equal(fromWorkspace.source, "workspace venv");
  assert.ok(needsConsent(fromWorkspace));
  const fromExtension = resolveServer({ ...base, searchRoots: ["/ext-repo/vscode-extension"], workspaceRoots: ["/ws/project"] });
  assert.equal(fromExtension.source, "project venv");
  assert.ok(!needsConsent(fromExtension));
  // Declined: the workspace's binary is skipped, never run.
  assert.throws(() => resolveServer({ ...base, searchRoots: [], workspaceRoots: [] }), /not found/);
});
