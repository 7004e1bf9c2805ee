/**
 * Script of the chat webview: renders the history and the streaming answer, sends questions,
 * stop, insert and copy requests to the extension. It talks to the extension only by messages.
 */
import type { Attach, CodeMark, FromWebview, HistoryEntry, ToWebview } from "../chat/messages";
import { createRenderer } from "./render";

declare function acquireVsCodeApi(): { postMessage(message: FromWebview): void };

const vscode = acquireVsCodeApi();
const render = createRenderer();

const log = document.getElementById("log") as HTMLDivElement;
const input = document.getElementById("input") as HTMLTextAreaElement;
const send = document.getElementById("send") as HTMLButtonElement;
const stop = document.getElementById("stop") as HTMLButtonElement;
const attach = document.getElementById("attach") as HTMLSelectElement;

let streaming: { element: HTMLDivElement; text: string; codeBlocks: string[] } | null = null;
let pendingFrame = false;

function setBusy(busy: boolean): void {
  send.disabled = busy;
  stop.hidden = !busy;
  document.body.classList.toggle("busy", busy);
}

function messageElement(entry: HistoryEntry): HTMLDivElement {
  const element = document.createElement("div");
  element.className = `message ${entry.role}`;
  const body = document.createElement("div");
  body.className = "body";
  element.appendChild(body);
  fill(element, entry);
  return element;
}

function fill(element: HTMLDivElement, entry: HistoryEntry): string[] {
  const body = element.querySelector(".body") as HTMLDivElement;
  let codeBlocks: string[] = [];
  if (entry.role === "user") {
    body.textContent = entry.content;
  } else {
    const rendered = render(entry.content);
    body.innerHTML = rendered.html;
    codeBlocks = rendered.codeBlocks;
  }
  (element as HTMLDivElement & { codeBlocks?: string[] }).codeBlocks = codeBlocks;
  showMarks(element, entry.marks ?? []);
  for (const cls of ["context", "note"] as const) {
    element.querySelector(`.${cls}`)?.remove();
    const text = entry[cls];
    if (text) {
      const extra = document.createElement("div");
      extra.className = cls;
      extra.textContent = text;
      element.appendChild(extra);
    }
  }
  return codeBlocks;
}

/** Puts a provenance marker above each code block that matches the indexed corpus. */
function showMarks(element: HTMLElement, marks: CodeMark[]): void {
  element.querySelectorAll(".provenance-mark").forEach((old) => old.remove());
  for (const mark of marks) {
    const block = element.querySelector(`.code-block[data-index="${mark.index}"]`);
    if (!block) continue;
    const note = document.createElement("div");
    note.className = `provenance-mark ${mark.verdict}${mark.fit ? ` fit-${mark.fit}` : ""}`;
    note.textContent = `⚠ ${mark.text}`;
    note.title = "stackcoder checked this block against the indexed corpus; the finding is in the Provenance view.";
    block.insertBefore(note, block.firstChild);
    block.classList.add("marked");
    block.querySelector("button.insert")?.setAttribute("title", `Insert at cursor (${mark.verdict} code: see the note above)`);
  }
}

function scrollToEnd(): void {
  log.scrollTop = log.scrollHeight;
}

function renderStreaming(): void {
  pendingFrame = false;
  if (!streaming) return;
  streaming.codeBlocks = fill(streaming.element, { role: "assistant", content: streaming.text || "…" });
  scrollToEnd();
}

function receive(message: ToWebview): void {
  switch (message.type) {
    case "history":
      log.replaceChildren(...message.entries.map(messageElement));
      streaming = null;
      setBusy(message.busy);
      scrollToEnd();
      break;
    case "start": {
      log.appendChild(messageElement(message.user));
      const element = messageElement({ role: "assistant", content: "…" });
      element.classList.add("streaming");
      log.appendChild(element);
      streaming = { element, text: "", codeBlocks: [] };
      setBusy(true);
      scrollToEnd();
      break;
    }
    case "delta":
      if (!streaming) return;
      streaming.text += message.text;
      if (!pendingFrame) {
        pendingFrame = true;
        requestAnimationFrame(renderStreaming);
      }
      break;
    case "end":
      if (streaming) {
        streaming.element.classList.remove("streaming");
        fill(streaming.element, message.entry);
      } else {
        log.appendChild(messageElement(message.entry));
      }
      streaming = null;
      setBusy(false);
      scrollToEnd();
      break;
    case "marks": {
      const answers = log.querySelectorAll(".message.assistant:not(.streaming)");
      const last = answers[answers.length - 1] as HTMLDivElement | undefined;
      if (last) showMarks(last, message.marks);
      break;
    }
    case "error": {
      const element = document.createElement("div");
      element.className = "message error";
      element.textContent = message.message;
      log.appendChild(element);
      scrollToEnd();
      break;
    }
  }
}

// Whether the extension was told about the question being written (once per question).
let composing = false;

function compose(): void {
  if (composing) return;
  composing = true;
  vscode.postMessage({ type: "compose", attach: attach.value as Attach });
}

function ask(): void {
  const text = input.value.trim();
  if (!text || send.disabled) return;
  vscode.postMessage({ type: "ask", text, attach: attach.value as Attach });
  input.value = "";
  composing = false;
}

window.addEventListener("message", (event: MessageEvent<ToWebview>) => receive(event.data));
send.addEventListener("click", ask);
stop.addEventListener("click", () => vscode.postMessage({ type: "stop" }));
input.addEventListener("input", compose);
attach.addEventListener("change", () => {
  composing = false;
  if (input.value.trim()) compose();
});
input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    ask();
  }
});
log.addEventListener("click", (event) => {
  const button = (event.target as HTMLElement).closest("button");
  if (!button || !button.dataset.index) return;
  const message = button.closest(".message") as (HTMLDivElement & { codeBlocks?: string[] }) | null;
  const code = message?.codeBlocks?.[Number(button.dataset.index)];
  if (code === undefined) return;
  if (button.classList.contains("insert")) vscode.postMessage({ type: "insert", code });
  if (button.classList.contains("copy")) {
    vscode.postMessage({ type: "copy", code });
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 1200);
  }
});
vscode.postMessage({ type: "ready" });
