import assert from "node:assert/strict";
import { test } from "node:test";
import { Debouncer } from "../src/debounce";

function token() {
  const listeners: Array<() => void> = [];
  return {
    isCancellationRequested: false,
    onCancellationRequested(listener: () => void) {
      listeners.push(listener);
      return { dispose() {} };
    },
    cancel() {
      this.isCancellationRequested = true;
      for (const l of listeners) l();
    },
  };
}

test("a lone request passes after the delay", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const d = new Debouncer();
  const pending = d.wait(150);
  t.mock.timers.tick(150);
  assert.equal(await pending, true);
});

test("a newer request supersedes an older one", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const d = new Debouncer();
  const first = d.wait(150);
  t.mock.timers.tick(100);
  const second = d.wait(150);
  t.mock.timers.tick(150);
  assert.equal(await first, false);
  assert.equal(await second, true);
});

test("cancellation resolves false at once", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const d = new Debouncer();
  const tok = token();
  const pending = d.wait(1000, tok);
  tok.cancel();
  assert.equal(await pending, false);
});

test("an already cancelled token and reset both drop the request", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const d = new Debouncer();
  const tok = token();
  tok.cancel();
  assert.equal(await d.wait(10, tok), false);
  const pending = d.wait(50);
  d.reset();
  t.mock.timers.tick(50);
  assert.equal(await pending, false);
});

test("zero delay answers immediately", async () => {
  assert.equal(await new Debouncer().wait(0), true);
});
