import assert from "node:assert/strict";
import { test } from "node:test";
import { type CursorSpot, WarmPlanner } from "../src/warmPlanner";

function spot(line: number, character: number, version = 1, uri = "file:///a.py"): CursorSpot {
  return { uri, version, line, character };
}

function planner() {
  const sent: CursorSpot[] = [];
  return { sent, planner: new WarmPlanner(250, (s) => sent.push(s)) };
}

test("a cursor that rests at a new place is warmed up once", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { sent, planner: p } = planner();
  p.cursorMoved(spot(3, 4));
  t.mock.timers.tick(249);
  assert.deepEqual(sent, []);
  t.mock.timers.tick(1);
  assert.deepEqual(sent, [spot(3, 4)]);
  p.cursorMoved(spot(3, 4)); // the same place again (focus came back): nothing new to warm
  t.mock.timers.tick(1000);
  assert.equal(sent.length, 1);
});

test("a cursor moving on (arrow keys held down) is warmed up where it stops", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { sent, planner: p } = planner();
  for (let line = 0; line < 10; line++) {
    p.cursorMoved(spot(line, 0));
    t.mock.timers.tick(30);
  }
  t.mock.timers.tick(250);
  assert.deepEqual(sent, [spot(9, 0)]);
});

test("typing is left to the completion requests", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { sent, planner: p } = planner();
  p.cursorMoved(spot(2, 0, 1));
  t.mock.timers.tick(250);
  p.cursorMoved(spot(2, 1, 2)); // an edit moved the cursor
  p.cursorMoved(spot(2, 2, 3));
  t.mock.timers.tick(1000);
  assert.deepEqual(sent, [spot(2, 0, 1)]);
  p.cursorMoved(spot(7, 0, 3)); // then a click elsewhere, without an edit
  t.mock.timers.tick(250);
  assert.deepEqual(sent, [spot(2, 0, 1), spot(7, 0, 3)]);
});

test("a selection or a disabled feature cancels the pending warm-up", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { sent, planner: p } = planner();
  p.cursorMoved(spot(1, 0));
  p.cancel();
  t.mock.timers.tick(1000);
  assert.deepEqual(sent, []);
});

test("documents are tracked apart, and a closed one is forgotten", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { sent, planner: p } = planner();
  p.cursorMoved(spot(1, 0, 5, "file:///a.py"));
  t.mock.timers.tick(250);
  p.cursorMoved(spot(1, 0, 9, "file:///b.py")); // another document's version says nothing of a.py
  t.mock.timers.tick(250);
  assert.equal(sent.length, 2);
  p.forget("file:///a.py");
  p.cursorMoved(spot(1, 0, 6, "file:///a.py")); // reopened: no edit is inferred from the version
  t.mock.timers.tick(250);
  assert.equal(sent.length, 3);
});
