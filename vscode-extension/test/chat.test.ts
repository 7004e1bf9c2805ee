import assert from "node:assert/strict";
import { test } from "node:test";
import { answerNote, appendEntry, finalAnswerText, NO_ANSWER_NOTE, sanitizeHistory, toServerMessages } from "../src/chat/history";
import { parseFromWebview } from "../src/chat/messages";
import { closeOpenFence, createRenderer, hasVisibleText } from "../src/webview/render";

test("webview messages are validated", () => {
  assert.deepEqual(parseFromWebview({ type: "ask", text: "why?", attach: "file" }), { type: "ask", text: "why?", attach: "file" });
  assert.equal(parseFromWebview({ type: "ask", text: "  ", attach: "file" }), null);
  assert.equal(parseFromWebview({ type: "ask", text: "x", attach: "disk" }), null);
  assert.equal(parseFromWebview({ type: "insert" }), null);
  assert.equal(parseFromWebview({ type: "eval", code: "x" }), null);
  assert.equal(parseFromWebview("stop"), null);
  assert.deepEqual(parseFromWebview({ type: "stop", extra: 1 }), { type: "stop" });
  assert.deepEqual(parseFromWebview({ type: "compose", attach: "selection" }), { type: "compose", attach: "selection" });
  assert.equal(parseFromWebview({ type: "compose", attach: "everything" }), null);
});

test("history is bounded and the server gets a conversation starting with the user", () => {
  let h = [] as ReturnType<typeof sanitizeHistory>;
  for (let i = 0; i < 5; i++) h = appendEntry(h, { role: i % 2 ? "assistant" : "user", content: `m${i}` }, 4);
  assert.deepEqual(h.map((e) => e.content), ["m1", "m2", "m3", "m4"]);
  assert.deepEqual(toServerMessages(h), [
    { role: "user", content: "m2" },
    { role: "assistant", content: "m3" },
    { role: "user", content: "m4" },
  ]);
  assert.deepEqual(sanitizeHistory([{ role: "user", content: "ok" }, { role: "system", content: "x" }, null, 3]), [{ role: "user", content: "ok" }]);
  assert.deepEqual(sanitizeHistory("junk"), []);
});

test("markdown renders with highlighted code blocks that carry their source", () => {
  const render = createRenderer();
  const r = render("Use this:\n\n```python\ndef f(x):\n    return x + 1\n```\n\nand `g`.");
  assert.deepEqual(r.codeBlocks, ["def f(x):\n    return x + 1\n"]);
  assert.match(r.html, /class="hljs language-python"/);
  assert.match(r.html, /<span class="hljs-keyword">def<\/span>/);
  assert.match(r.html, /<button class="insert" data-index="0"/);
  assert.match(r.html, /<code>g<\/code>/);
  // A second render starts counting blocks again.
  assert.equal(render("```\na\n```\n```js\nb\n```").codeBlocks.length, 2);
});

test("raw HTML from the model is escaped", () => {
  const r = createRenderer()("<img src=x onerror=alert(1)> ```\n<script>x</script>\n```");
  assert.doesNotMatch(r.html, /<img|<script>/);
});

test("an unterminated fence renders as code while streaming", () => {
  assert.equal(closeOpenFence("a\n```py\nx = 1"), "a\n```py\nx = 1\n```");
  assert.equal(closeOpenFence("```\nx\n```"), "```\nx\n```");
  assert.equal(createRenderer()("```py\nx = 1").codeBlocks[0], "x = 1\n");
});

test("a stopped answer keeps the text that had streamed", () => {
  assert.equal(finalAnswerText({ text: "full answer" }, "full", false), "full answer");
  assert.equal(finalAnswerText({ text: "" }, "partial", true), "partial");
  assert.equal(finalAnswerText({ text: "partial and more" }, "partial", true), "partial and more");
  assert.equal(finalAnswerText(null, "partial", true), "partial");
  assert.equal(finalAnswerText({ text: 3 }, "streamed", false), "streamed");
});

test("the note under an answer says who ended it", () => {
  assert.equal(answerNote({ text: "a b" }, "a b", false), undefined);
  assert.equal(answerNote({ text: "a b" }, "a b", true), "stopped");
  const loop = "the model began repeating itself, so the answer was stopped there";
  assert.equal(answerNote({ text: "x x x", note: loop }, "x x x", false), loop);
  assert.equal(answerNote({ text: "x x x", note: loop }, "x x x", true), "stopped");
  assert.equal(answerNote({ text: "", note: 7 }, "", false), NO_ANSWER_NOTE);
  assert.equal(answerNote(null, "  ", false), NO_ANSWER_NOTE);
});

test("an answer whose markdown renders to nothing readable is shown as written", () => {
  const render = createRenderer();
  for (const answer of ["---", "#", "* * *\n\n___", "##\n\n---\n"]) {
    const r = render(answer);
    assert.ok(hasVisibleText(r.html), `${JSON.stringify(answer)} rendered invisible: ${r.html}`);
    assert.match(r.html, /<pre class="raw">/);
  }
  assert.doesNotMatch(render("# Title\n\n---\ntext").html, /class="raw"/);
  assert.equal(hasVisibleText("<hr>\n<h1></h1>\n"), false);
  assert.equal(hasVisibleText("<p>&lt;</p>"), true);
});
