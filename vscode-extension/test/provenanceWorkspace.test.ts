import assert from "node:assert/strict";
import { test } from "node:test";
import { fencedBlocks, worthChecking } from "../src/chat/codeBlocks";
import { sanitizeHistory } from "../src/chat/history";
import type { AttributionMatch, AttributionReport } from "../src/protocol";
import { blockMarkText, entryCovers, worstFit } from "../src/provenanceFormat";
import { createRenderer } from "../src/webview/render";

const match = (over: Partial<AttributionMatch> = {}): AttributionMatch => ({
  repo: "acme/tools",
  path: "src/io.py",
  license: "GPL-3.0",
  url: null,
  source_start_line: 10,
  source_end_line: 20,
  query_start_line: 1,
  query_end_line: 11,
  kind: "exact",
  score: 1,
  ...over,
});

test("entries of mine.json cover matches as the server decides", () => {
  assert.ok(entryCovers({ repo: "acme/tools" }, match()));
  assert.ok(entryCovers({ repo: "tools" }, match())); // a folder index names repositories by folder
  assert.ok(!entryCovers({ repo: "other/tools" }, match()));
  assert.ok(entryCovers({ repo: "acme/tools", path: "src/*.py" }, match()));
  assert.ok(!entryCovers({ repo: "acme/tools", path: "docs/*" }, match()));
  assert.ok(entryCovers({ repo: "acme/tools", path: "src/io.py", lines: [18, 30] }, match()));
  assert.ok(!entryCovers({ repo: "acme/tools", path: "src/io.py", lines: [21, 30] }, match()));
});

test("a chat block's mark names the source and the license fit", () => {
  const fit = { source: "GPL-3.0", project: "MIT", verdict: "incompatible" as const, notice: true, note: "", text: "GPL-3.0 source in an MIT project: incompatible" };
  const report: AttributionReport = { verdict: "copied", matches: [match({ license_fit: fit }), match({ score: 0.5, kind: "near", license_fit: { ...fit, verdict: "compatible" } })] };
  assert.equal(blockMarkText(report), "Copied from acme/tools: src/io.py lines 10–20 (GPL-3.0) — GPL-3.0 source in an MIT project: incompatible");
  assert.equal(worstFit(report), "incompatible");
  assert.equal(blockMarkText({ verdict: "original", matches: [] }), null);
  assert.equal(worstFit({ verdict: "similar", matches: [match()] }), null);
});

test("code blocks are numbered as the webview renders them", () => {
  const answer = "Here:\n\n```python\ndef a():\n    return 1\n```\n\ntext `inline`\n\n~~~\nb = 2\n~~~\n\n```js\nlet c";
  const blocks = fencedBlocks(answer);
  assert.deepEqual(blocks, createRenderer()(answer).codeBlocks);
  assert.equal(blocks.length, 3);
  assert.ok(!worthChecking(blocks[0]));
  assert.ok(worthChecking("def rgb_to_hls(r, g, b):\n    maxc = max(r, g, b)\n    minc = min(r, g, b)\n"));
});

test("stored marks survive only when well formed", () => {
  const kept = sanitizeHistory([
    { role: "assistant", content: "x", marks: [{ index: 0, verdict: "copied", text: "Copied from a" }, { index: "1", verdict: "copied", text: "" }] },
    { role: "assistant", content: "y", marks: "junk" },
  ]);
  assert.deepEqual(kept, [
    { role: "assistant", content: "x", marks: [{ index: 0, verdict: "copied", text: "Copied from a" }] },
    { role: "assistant", content: "y" },
  ]);
});
