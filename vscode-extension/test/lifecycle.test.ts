import assert from "node:assert/strict";
import { test } from "node:test";
import { endOfInsertion, firstCodeBlock, looksLikePaste, parseReport, summarizeReport } from "../src/provenanceFormat";
import { RestartLimiter } from "../src/restart";
import { SessionStats, percentile } from "../src/session";

test("restarts stop after the limit within the window and resume after it", () => {
  let now = 0;
  const limiter = new RestartLimiter(3, 60_000, () => now);
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.onCrash().restart), [true, true, true, false]);
  now = 61_000;
  assert.deepEqual(limiter.onCrash(), { restart: true, attempt: 1, max: 3 });
  limiter.reset();
  assert.equal(limiter.onCrash().attempt, 1);
});

test("session statistics: acceptance over shown, nearest-rank percentiles", () => {
  const s = new SessionStats();
  assert.equal(s.snapshot().acceptanceRate, null);
  for (const ms of [100, 300, 200, 400]) s.recordAnswer(ms, ms === 400 ? 0 : 1);
  s.recordAccepted();
  const snap = s.snapshot();
  assert.equal(snap.requested, 4);
  assert.equal(snap.shown, 3);
  assert.equal(snap.acceptanceRate, 1 / 3);
  assert.equal(snap.latency.last, 400);
  assert.equal(snap.latency.p50, 200);
  assert.equal(snap.latency.p95, 400);
  assert.equal(percentile([], 50), null);
});

const match = {
  repo: "cpython", path: "Lib/json/decoder.py", license: "PSF-2.0", url: null,
  source_start_line: 3, source_end_line: 9, query_start_line: 1, query_end_line: 7, kind: "exact" as const, score: 1,
};

test("reports are summarized with repository, path, lines and license", () => {
  assert.equal(summarizeReport({ verdict: "copied", matches: [match] }), "Copied from cpython: Lib/json/decoder.py lines 3–9 (PSF-2.0).");
  assert.equal(summarizeReport({ verdict: "original", matches: [] }), "No match in the indexed corpus.");
  assert.throws(() => parseReport({ verdict: "maybe", matches: [] }), /malformed/);
});

test("the end of an inserted text", () => {
  assert.deepEqual(endOfInsertion({ line: 4, character: 8 }, "abc"), { line: 4, character: 11 });
  assert.deepEqual(endOfInsertion({ line: 4, character: 8 }, "a\n  bc\nd"), { line: 6, character: 1 });
});

test("the first code block of a hover", () => {
  assert.equal(firstCodeBlock("**from** x\n\n```python\ndef f():\n    pass\n```\nmore"), "def f():\n    pass");
  assert.equal(firstCodeBlock("no code"), null);
});

test("only multi-line insertions of some size count as pastes", () => {
  assert.equal(looksLikePaste("x"), false);
  assert.equal(looksLikePaste("a".repeat(200)), false);
  assert.equal(looksLikePaste("def f(x):\n    return x\n"), false);
  assert.equal(looksLikePaste(`def rgb_to_hls(r, g, b):\n    maxc = max(r, g, b)\n    minc = min(r, g, b)\n${" ".repeat(20)}`), true);
});
