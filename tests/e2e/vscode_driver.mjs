// Drives a real VS Code (code-server in Debian's Chromium, through playwright-core) through the
// stackcoder scenarios and prints one JSON object with each scenario's observations.
//
//   node tests/e2e/vscode_driver.mjs CONFIG.json
//
// CONFIG: {url, shots, profile, scenarios: [...], corpusText, question, warmText}. Every scenario runs even
// when an earlier one failed; a failure is reported as {error} with a screenshot.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(path.join(repo, "vscode-extension", "package.json"));
const { chromium } = require("playwright-core");

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const log = (...args) => console.error(new Date().toISOString(), ...args);
const GHOST = ".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text";

async function shot(page, name) {
  await page.screenshot({ path: path.join(config.shots, `${name}.png`) });
}

async function command(page, title) {
  // The palette can be slow to open on a busy machine: retry once after closing whatever is open.
  for (let attempt = 1; ; attempt++) {
    try {
      await page.keyboard.press("Control+Shift+P");
      const input = page.locator(".quick-input-widget input");
      await input.waitFor({ state: "visible" });
      await input.fill(`>${title}`);
      await page.locator(".quick-input-list .monaco-list-row", { hasText: title.split(": ").pop() }).first().waitFor();
      await page.waitForTimeout(300);
      await page.keyboard.press("Enter");
      return;
    } catch (error) {
      if (attempt >= 2) throw error;
      log(`command palette: ${String(error.message).split("\n")[0]}; retrying`);
      await page.keyboard.press("Escape");
      await page.waitForTimeout(1000);
    }
  }
}

/** Saves the active editor and waits (up to 15 s) until the file on disk satisfies `ready`. */
async function save(page, file, ready) {
  await page.keyboard.press("Control+S");
  // The file on disk is current once the tab no longer shows unsaved changes; before that, an
  // older save (or auto-save) can still be what the file holds.
  await page.locator(".tab.active.dirty").waitFor({ state: "detached", timeout: 15_000 }).catch(() => {});
  // A read can also land while the file is being written: take a text only once two reads agree.
  let previous = null;
  for (let i = 0; i < 60; i++) {
    const text = readFileSync(file, "utf8");
    if (text === previous && ready(text)) return text;
    previous = text;
    await page.waitForTimeout(250);
  }
  return readFileSync(file, "utf8");
}

async function openFile(page, name) {
  // A webview that finishes loading takes focus and closes Quick Open: retry until the tab is active.
  for (let attempt = 1; ; attempt++) {
    try {
      await page.keyboard.press("Control+P");
      const input = page.locator(".quick-input-widget input");
      await input.waitFor({ state: "visible", timeout: 10_000 });
      await input.fill(name, { timeout: 10_000 });
      await page.locator(`.quick-input-list .monaco-list-row[aria-label*="${name}"]`).first().waitFor({ timeout: 10_000 });
      await page.keyboard.press("Enter");
      // (the file may be open in a second editor group too, e.g. beside a source shown by provenance)
      await page.locator(`.tab.active[aria-label*="${name}"]`).first().waitFor({ timeout: 10_000 });
      break;
    } catch (error) {
      if (attempt >= 4) throw error;
      log(`quick open ${name}: ${String(error.message).split("\n")[0]}; retrying`);
      await page.keyboard.press("Escape");
      await page.waitForTimeout(500);
    }
  }
  const editor = page.locator(".editor-instance .monaco-editor .view-lines").first();
  await editor.click();
  return editor;
}

/** The chat webview's inner frame (VS Code nests it in two iframes). */
async function chatFrame(page) {
  for (let i = 0; i < 120; i++) {
    for (const frame of page.frames()) {
      try {
        if (await frame.evaluate(() => !!document.getElementById("log") && !!document.getElementById("send"))) return frame;
      } catch {
        // frames come and go while the workbench loads
      }
    }
    await page.waitForTimeout(500);
  }
  throw new Error("the chat webview did not appear");
}

/** Records every text the streaming answer shows, to prove it arrived in pieces. */
async function watchStreaming(frame) {
  await frame.evaluate(() => {
    window.__seen = [];
    window.__deltas = 0;
    window.addEventListener("message", (event) => {
      if (event.data?.type === "delta") window.__deltas++;
    });
    const observer = new MutationObserver(() => {
      const el = document.querySelector(".message.assistant.streaming .body");
      if (el) window.__seen.push(el.textContent.length);
    });
    observer.observe(document.getElementById("log"), { subtree: true, childList: true, characterData: true });
  });
}

async function waitAnswer(frame, before) {
  await frame.waitForFunction(
    (n) => document.querySelectorAll(".message.assistant:not(.streaming)").length > n,
    before,
    { timeout: 120_000 },
  );
  return frame.evaluate(() => {
    const all = document.querySelectorAll(".message.assistant:not(.streaming)");
    const last = all[all.length - 1];
    const seen = [...new Set(window.__seen ?? [])].filter((n) => n > 1);
    return {
      text: last.querySelector(".body").textContent,
      note: last.querySelector(".note")?.textContent ?? null,
      partialLengths: seen,
      deltas: window.__deltas ?? 0,
      codeButtons: last.querySelectorAll("button.insert").length,
    };
  });
}

const scenarios = {
  async ghost(page) {
    await openFile(page, "ghost.py");
    const file = path.join(config.workspace, "ghost.py");
    // Type like a user; a small model may have nothing to say at one spot, so go on typing at the
    // next. The later spots are ones where the embedded model suggests something whatever follows
    // the cursor (checked against the engine with and without a closing bracket or newline after).
    const attempts = [
      ["def add(a, b):\n", "return a"],
      ["\n", "x = "],
      ["\n", "import os\n", "import "],
      ["\n", "if __name__ == "],
    ];
    let shown = false;
    for (const [index, keys] of attempts.entries()) {
      for (const k of keys) await page.keyboard.type(k);
      try {
        await page.locator(GHOST).first().waitFor({ timeout: index === 0 ? 40_000 : 25_000 });
        shown = true;
        break;
      } catch {
        log("no ghost text yet; typing on");
      }
    }
    if (!shown) throw new Error("no ghost text appeared while typing");
    const before = await save(page, file, (text) => text.startsWith("def add(a, b):") && !/\n\s*$/.test(text));
    if ((await page.locator(GHOST).count()) === 0) {
      await command(page, "stackcoder: Trigger Suggestion");
      await page.locator(GHOST).first().waitFor({ timeout: 40_000 });
    }
    const ghost = (await page.locator(GHOST).allTextContents()).join("\n");
    await shot(page, "ghost-text");
    await page.keyboard.press("Tab");
    await page.locator(GHOST).first().waitFor({ state: "detached", timeout: 10_000 });
    const after = await save(page, file, (text) => text !== before);
    await shot(page, "ghost-accepted");
    // The acceptance reached the extension and, through stackcoder.didAcceptCompletion, the server.
    await command(page, "stackcoder: Focus on Session View");
    const session = page.locator('.pane:has(.pane-header[aria-label*="Session"]) .monaco-list');
    let sessionText = "";
    for (let i = 0; i < 30 && !/Server shown \/ accepted\s*\d+ \/ [1-9]/.test(sessionText); i++) {
      await page.waitForTimeout(500);
      sessionText = await session.innerText().catch(() => "");
    }
    await shot(page, "session");
    return { ghost, before, after, sessionText };
  },

  async brackets(page) {
    // The editor closes a bracket as it is typed: "print(" becomes "print()" with the cursor
    // inside. The suggestion shown there must fit before that ")" (not repeat it).
    await openFile(page, "brackets.py");
    const file = path.join(config.workspace, "brackets.py");
    const attempts = [
      ["import os\n", "\n", "print("],
      ["\n", "result = dict("],
      ["\n", "n = len("],
      ["\n", "value = int("],
      ["\n", "x = max("],
    ];
    let shown = false;
    for (const [index, keys] of attempts.entries()) {
      if (index > 0) await page.keyboard.press("End"); // leave the closed bracket before a new line
      for (const k of keys) {
        if (!k.endsWith("(")) {
          await page.keyboard.type(k);
          continue;
        }
        // A "(" typed into a shown suggestion that starts with "(" types through it, and then the
        // editor closes nothing: let pending suggestions arrive, dismiss them, then type "(".
        await page.keyboard.type(k.slice(0, -1));
        await page.waitForTimeout(800);
        await page.keyboard.press("Escape");
        await page.keyboard.type("(");
      }
      try {
        // a suggestion shows within a second or two of the keystroke; none by then means the
        // model had nothing to offer here, and the next line is tried
        await page.locator(GHOST).first().waitFor({ timeout: 8_000 });
        shown = true;
        break;
      } catch {
        log("no ghost text inside the brackets yet; typing on");
      }
    }
    if (!shown) throw new Error("no ghost text appeared inside an auto-closed bracket");
    const before = await save(page, file, (text) => /\(\)\s*$/.test(text));
    const ghost = (await page.locator(GHOST).allTextContents()).join("\n");
    await shot(page, "brackets-ghost");
    await page.keyboard.press("Tab");
    await page.locator(GHOST).first().waitFor({ state: "detached", timeout: 10_000 });
    const after = await save(page, file, (text) => text !== before);
    return { ghost, before, after };
  },

  async warmup(page) {
    // The cursor moves to the end of the file's last line without typing and rests there: the
    // extension tells the server, which computes the suggestions after Enter and at the cursor.
    // Pressing Enter then finds its suggestion in the server's cache (the server log says so).
    writeFileSync(path.join(config.workspace, "warm.py"), config.warmText);
    await page.waitForTimeout(1_000); // for the workspace's file watchers
    await openFile(page, "warm.py");
    await page.keyboard.press("Control+End");
    // The cursor rests long enough for the default 1.5B model to compute both warm-up prompts on
    // two cores (the cursor's and the one after Enter: 2-4 s each cold with AVX-512, about twice
    // that on AVX2-only CPUs).
    await page.waitForTimeout(15_000);
    await page.keyboard.press("Enter");
    let ghost = "";
    try {
      await page.locator(GHOST).first().waitFor({ timeout: 20_000 });
      ghost = (await page.locator(GHOST).allTextContents()).join("\n");
    } catch {
      log("no ghost text after Enter");
    }
    await shot(page, "warmup-enter");
    await page.keyboard.press("Escape");
    return { ghost };
  },

  async explain(page) {
    // Commands run through the extension's keybindings here (ctrl+alt+c, ctrl+alt+e); the palette is
    // exercised by the ghost and provenance scenarios.
    await page.keyboard.press("Control+Alt+C");
    const frame = await chatFrame(page);
    await watchStreaming(frame);
    const before = await frame.evaluate(() => document.querySelectorAll(".message.assistant:not(.streaming)").length);
    const asked = await frame.evaluate(() => document.querySelectorAll(".message.user").length);
    await openFile(page, "inventory.py");
    await page.keyboard.press("Control+Home");
    for (let i = 0; i < 16; i++) await page.keyboard.press("Shift+ArrowDown");
    await page.keyboard.press("Control+Alt+E");
    await frame.waitForFunction((n) => document.querySelectorAll(".message.user").length > n, asked, { timeout: 30_000 });
    const answer = await waitAnswer(frame, before);
    const question = await frame.evaluate(() => {
      const users = document.querySelectorAll(".message.user");
      return users[users.length - 1]?.textContent ?? "";
    });
    await shot(page, "explain");
    return { ...answer, question };
  },

  async chat(page) {
    await page.keyboard.press("Control+Alt+C");
    const frame = await chatFrame(page);
    await watchStreaming(frame);
    const before = await frame.evaluate(() => document.querySelectorAll(".message.assistant:not(.streaming)").length);
    await frame.locator("#input").fill(config.question);
    await frame.locator("#input").press("Enter");
    const answer = await waitAnswer(frame, before);
    await shot(page, "chat");
    return answer;
  },

  async stop(page) {
    await page.keyboard.press("Control+Alt+C");
    const frame = await chatFrame(page);
    const before = await frame.evaluate(() => document.querySelectorAll(".message.assistant:not(.streaming)").length);
    await frame.locator("#input").fill("Write a long tutorial about Python dataclasses with many examples.");
    await frame.locator("#input").press("Enter");
    // Click Stop the moment the first piece of the answer shows, so it lands mid-stream.
    await frame.waitForFunction(
      () => {
        const body = document.querySelector(".message.assistant.streaming .body");
        // Before the first delta the body shows the placeholder "…".
        return !!body && body.textContent.trim().length > 0 && body.textContent.trim() !== "…";
      },
      null,
      { timeout: 120_000, polling: "raf" },
    );
    const atClick = await frame.evaluate(() => {
      document.getElementById("stop").click();
      return document.querySelector(".message.assistant.streaming .body").textContent.trim().length;
    });
    const answer = await waitAnswer(frame, before);
    const stopHidden = await frame.evaluate(() => document.getElementById("stop").hidden);
    await page.waitForTimeout(2000);
    const later = await frame.evaluate(() => {
      const all = document.querySelectorAll(".message.assistant");
      return { count: all.length, text: all[all.length - 1].querySelector(".body").textContent };
    });
    await shot(page, "chat-stopped");
    return { ...answer, atClick, stopHidden, laterText: later.text, laterCount: later.count };
  },

  async provenance(page) {
    await openFile(page, "pasted.py");
    await page.evaluate((text) => navigator.clipboard.writeText(text), config.corpusText);
    await page.keyboard.press("Control+V");
    let pasted = true;
    try {
      await page.locator(".monaco-editor .squiggly-warning").first().waitFor({ timeout: 90_000 });
    } catch (error) {
      pasted = false;
      throw new Error(`no provenance warning appeared after the paste (${error.message.split("\n")[0]})`);
    }
    await page.keyboard.press("Control+S");
    await page.keyboard.press("Control+Shift+M");
    const problems = page.locator(".markers-panel");
    await problems.waitFor();
    await page.waitForTimeout(500);
    const problemsText = await problems.innerText();
    await shot(page, "provenance-problems");
    await command(page, "stackcoder: Focus on Provenance View");
    await page.waitForTimeout(1000);
    const view = await page.locator('.pane:has(.pane-header[aria-label*="Provenance"]) .monaco-list').innerText().catch(() => "");
    await shot(page, "provenance-view");
    // A finding opens the matching source beside the pasted code.
    await page.locator('.pane:has(.pane-header[aria-label*="Provenance"]) .monaco-list-row').first().click();
    await page.locator(".editor-group-container").nth(1).waitFor({ timeout: 20_000 });
    await page.waitForTimeout(1000);
    const besideText = await page.locator(".editor-group-container").nth(1).locator(".view-lines").innerText();
    await shot(page, "provenance-source");
    return { pasted, problemsText, provenanceView: view, besideText };
  },

  async mine(page) {
    // The finding of the provenance scenario is the user's own code: the quick fix on the warning
    // says so, the warning goes away and the entry lands in .stackcoder/mine.json.
    await openFile(page, "pasted.py");
    await page.locator(".monaco-editor .squiggly-warning").first().waitFor({ timeout: 30_000 });
    await page.keyboard.press("Control+Home");
    await page.keyboard.press("Control+.");
    const row = page.locator(".action-widget .monaco-list-row", { hasText: "this is my code" }).first();
    await row.waitFor({ timeout: 20_000 });
    const menu = await page.locator(".action-widget .monaco-list-row").allInnerTexts();
    await shot(page, "mine-quickfix");
    // the menu takes the keyboard (a click can land on the hover that the warning opens)
    let focused = "";
    for (let i = 0; i < 6; i++) {
      focused = (await page.locator(".action-widget .monaco-list-row.focused").first().getAttribute("aria-label").catch(() => "")) ?? "";
      if (focused.includes("this is my code")) break;
      await page.keyboard.press("ArrowDown");
    }
    const lines = /lines (\d+-\d+)/.exec(focused)?.[1] ?? "";
    await page.keyboard.press("Enter");
    // that finding's warning goes (the same code may match other lines of the source: those stay)
    await page.keyboard.press("Control+Shift+M");
    const problems = page.locator(".markers-panel");
    let problemsAfter = "";
    for (let i = 0; i < 60; i++) {
      await page.waitForTimeout(500);
      problemsAfter = await problems.innerText().catch(() => "");
      if (lines && !problemsAfter.includes(`lines ${lines}`)) break;
    }
    const toast = page.locator(".notification-toast", { hasText: "marked as your own code" });
    await toast.first().waitFor({ timeout: 15_000 });
    const message = await toast.first().innerText();
    await shot(page, "mine-marked");
    const file = path.join(config.workspace, ".stackcoder", "mine.json");
    const mineJson = readFileSync(file, "utf8");
    await command(page, "stackcoder: Open My Code List");
    await page.locator('.tab.active[aria-label*="mine.json"]').waitFor({ timeout: 15_000 });
    const listText = await page.locator(".editor-instance .monaco-editor .view-lines").first().innerText();
    await shot(page, "mine-list");
    await page.keyboard.press("Escape");
    return { menu, message, mineJson, listText, marked: lines, problemsAfter };
  },

  async chatcode(page) {
    // A chat answer's code block that copies indexed code carries a marker before Insert, and the
    // finding shows in the Provenance view; Insert then records it in the reference log.
    writeFileSync(path.join(config.workspace, "chatcode.py"), "");
    await page.waitForTimeout(1_000);
    await openFile(page, "chatcode.py");
    await page.keyboard.press("Control+Alt+C");
    const frame = await chatFrame(page);
    await watchStreaming(frame);
    await frame.locator("#attach").selectOption("none");
    const before = await frame.evaluate(() => document.querySelectorAll(".message.assistant:not(.streaming)").length);
    await frame.locator("#input").fill(config.chatCodeQuestion);
    await frame.locator("#input").press("Enter");
    const answer = await waitAnswer(frame, before);
    const { marks, blocks } = await frame.evaluate(() => {
      const all = document.querySelectorAll(".message.assistant:not(.streaming)");
      const last = all[all.length - 1];
      return { marks: [...last.querySelectorAll(".provenance-mark")].map((m) => m.textContent), blocks: last.codeBlocks ?? [] };
    });
    await shot(page, "chat-code-marker");
    if (marks.length === 0) return { ...answer, marks, blocks, provenanceView: "", log: null };
    await command(page, "stackcoder: Focus on Provenance View");
    await page.waitForTimeout(1000);
    const provenanceView = await page
      .locator('.pane:has(.pane-header[aria-label*="Provenance"]) .monaco-list')
      .innerText()
      .catch(() => "");
    await shot(page, "chat-code-provenance");
    // Insert the marked block into chatcode.py: the server checks it and logs the copy.
    await openFile(page, "chatcode.py");
    await page.keyboard.press("Control+Alt+C");
    await frame.evaluate(() => {
      const all = document.querySelectorAll(".message.assistant:not(.streaming)");
      all[all.length - 1].querySelector(".code-block.marked button.insert").click();
    });
    const logFile = path.join(config.workspace, ".stackcoder", "references.log");
    let log = null;
    for (let i = 0; i < 60 && log === null; i++) {
      await page.waitForTimeout(500);
      try {
        log = readFileSync(logFile, "utf8");
      } catch {
        // not written yet
      }
    }
    await command(page, "stackcoder: Open Code Reference Log");
    await page.waitForTimeout(1000);
    await shot(page, "chat-code-reference-log");
    return { ...answer, marks, blocks, provenanceView, log };
  },

  async crash(page) {
    const before = serverPids();
    if (before.length !== 1) throw new Error(`expected one stackcoder server, found ${before.length}`);
    process.kill(before[0], "SIGKILL");
    const toast = page.locator(".notification-toast", { hasText: "stopped unexpectedly" });
    await toast.first().waitFor({ timeout: 30_000 });
    const message = await toast.first().innerText();
    await shot(page, "crash-restarting");
    const status = page.locator(".statusbar-item", { hasText: /(^|\s)stackcoder\b/ }).first();
    const started = Date.now();
    let text = "";
    while (Date.now() - started < 180_000) {
      text = await status.innerText();
      const after = serverPids();
      if (after.length === 1 && after[0] !== before[0] && /stackcoder: /.test(text) && !/starting|loading model|no model/.test(text)) break;
      await page.waitForTimeout(500);
    }
    await shot(page, "crash-restarted");
    return { message, statusAfter: text, oldPid: before[0], newPids: serverPids() };
  },
};

/**
 * Pids of `stackcoder serve` processes started by this code-server (its process group).
 *
 * Read from /proc rather than `ps`, whose output is cut at $COLUMNS when that is set.
 */
function serverPids() {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the parenthesised command name: state, ppid, pgrp, ...
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== config.serverGroup) continue;
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (args.includes("serve") && args.some((arg) => /stackcoder/.test(arg))) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

const results = {};
const context = await chromium.launchPersistentContext(config.profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1440, height: 900 },
  permissions: ["clipboard-read", "clipboard-write"],
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  await page.goto(config.url, { waitUntil: "domcontentloaded", timeout: 120_000 });
  if (config.password) {
    // code-server asks for its password first, then sends the browser on to the workbench.
    const password = page.locator('input[name="password"]');
    if (await password.count()) {
      await password.fill(config.password);
      await Promise.all([page.waitForURL((u) => !u.pathname.startsWith("/login"), { timeout: 60_000 }), password.press("Enter")]);
    }
  }
  await page.locator(".monaco-workbench").waitFor({ timeout: 90_000 });
  const status = page.locator(".statusbar-item", { hasText: /(^|\s)stackcoder\b/ }).first();
  await status.waitFor({ timeout: 60_000 });
  results.statusBar = await status.innerText();
  // Type only once the server has its model: wait for the status bar to name it.
  const loaded = Date.now();
  while (Date.now() - loaded < 240_000) {
    const text = await status.innerText();
    if (/stackcoder: /.test(text) && !/loading model|stackcoder: starting/.test(text)) break;
    await page.waitForTimeout(500);
  }
  results.statusBarReady = await status.innerText();
  results.modelLoadSeconds = (Date.now() - loaded) / 1000;
  await shot(page, "workbench");
  for (const name of config.scenarios) {
    const started = Date.now();
    log(`scenario ${name}`);
    try {
      results[name] = await scenarios[name](page);
    } catch (error) {
      results[name] = { error: String(error?.message ?? error) };
      await shot(page, `${name}-failure`).catch(() => undefined);
      await page.keyboard.press("Escape").catch(() => undefined);
    }
    results[name].seconds = (Date.now() - started) / 1000;
    // Written after every scenario, so a run cut short still reports what it saw.
    writeFileSync(config.resultsFile, JSON.stringify(results, null, 2));
  }
  results.statusBarEnd = await status.innerText().catch(() => null);
  writeFileSync(config.resultsFile, JSON.stringify(results, null, 2));
} finally {
  await context.close();
}
process.stdout.write(`${JSON.stringify(results)}\n`);
