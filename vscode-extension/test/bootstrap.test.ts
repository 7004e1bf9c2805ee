import assert from "node:assert/strict";
import { test } from "node:test";
import { ServerNotFoundError, resolveServer } from "../src/bootstrap";

const fsWith = (files: string[]) => (file: string) => files.includes(file);
const base = { extraArgs: [], env: {}, searchRoots: [], platform: "linux" as const };

test("the setting wins over everything else", () => {
  const s = resolveServer({ ...base, settingPath: "/opt/sc", env: { STACKCODER_SERVER: "/e/sc" }, isExecutable: fsWith(["/opt/sc", "/e/sc"]) });
  assert.deepEqual(s, { command: "/opt/sc", args: ["serve"], source: "setting" });
});

test("a broken setting is an error, not a silent fallback", () => {
  assert.throws(() => resolveServer({ ...base, settingPath: "/nope", isExecutable: fsWith([]) }), ServerNotFoundError);
});

test("a Python interpreter runs the installed entry point", () => {
  const s = resolveServer({ ...base, settingPath: "/v/bin/python3", extraArgs: ["-v"], isExecutable: fsWith(["/v/bin/python3"]) });
  assert.equal(s.command, "/v/bin/python3");
  assert.equal(s.args[0], "-c");
  assert.deepEqual(s.args.slice(2), ["serve", "-v"]);
});

test("environment, then the project venv above the workspace, then PATH", () => {
  const files = ["/e/sc", "/repo/.venv/bin/stackcoder", "/usr/bin/stackcoder"];
  const env = { STACKCODER_SERVER: "/e/sc", PATH: "/usr/bin" };
  assert.equal(resolveServer({ ...base, settingPath: null, env, searchRoots: ["/repo/examples/ws"], isExecutable: fsWith(files) }).source, "environment");
  const venv = resolveServer({ ...base, settingPath: null, env: { PATH: "/usr/bin" }, searchRoots: ["/repo/examples/ws"], isExecutable: fsWith(files) });
  assert.deepEqual(venv, { command: "/repo/.venv/bin/stackcoder", args: ["serve"], source: "project venv" });
  const onPath = resolveServer({ ...base, settingPath: null, env: { PATH: "/x:/usr/bin" }, searchRoots: ["/elsewhere"], isExecutable: fsWith(files) });
  assert.deepEqual(onPath, { command: "/usr/bin/stackcoder", args: ["serve"], source: "PATH" });
});

test("nothing found says what to do", () => {
  assert.throws(() => resolveServer({ ...base, settingPath: null, isExecutable: fsWith([]) }), /make install/);
});
