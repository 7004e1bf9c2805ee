import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

// protocol.ts pulls in vscode-languageclient (which needs VS Code), so both sides are read as text.
const root = join(__dirname, "..", "..");
const ts = readFileSync(join(root, "src", "protocol.ts"), "utf8");
const py = readFileSync(join(root, "..", "lsp_server", "protocol.py"), "utf8");

function names(source: string, pattern: RegExp): string[] {
  return [...new Set([...source.matchAll(pattern)].map((m) => m[1]))].sort();
}

test("custom requests are declared the same on both sides", () => {
  const requests = /"(stackcoder\/[A-Za-z]+)"/g;
  assert.deepEqual(names(ts, requests), names(py, requests));
  assert.deepEqual(names(ts, requests), [
    "stackcoder/attribution",
    "stackcoder/cachedCompletion",
    "stackcoder/chat",
    "stackcoder/explain",
    "stackcoder/status",
    "stackcoder/warmChat",
    "stackcoder/warmCursor",
  ]);
});

test("server commands are declared the same on both sides", () => {
  const commands = /"(stackcoder\.[A-Za-z]+)"/g;
  assert.deepEqual(names(ts, commands), names(py, commands));
});

test("the diagnostic source matches", () => {
  assert.match(py, /DIAGNOSTIC_SOURCE = "stackcoder"/);
  assert.match(ts, /DIAGNOSTIC_SOURCE = "stackcoder"/);
});
