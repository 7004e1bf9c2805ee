/** The status bar item: server state, model, last latency; a click turns ghost text on or off. */
import * as vscode from "vscode";
import type { ServerStatus } from "./protocol";
import type { SessionSnapshot } from "./session";

export type ServerState = "starting" | "running" | "stopped" | "failed";

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: ServerState = "starting";
  private server: ServerStatus | null = null;
  private session: SessionSnapshot | null = null;
  private enabled = true;
  private detail = "";

  constructor() {
    this.item = vscode.window.createStatusBarItem("stackcoder.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "stackcoder";
    this.item.command = "stackcoder.toggleCompletions";
    this.render();
    this.item.show();
  }

  setState(state: ServerState, detail = ""): void {
    this.state = state;
    this.detail = detail;
    // A (re)starting server has no model yet: never show the previous server's model and latency.
    if (state === "starting") this.server = null;
    this.render();
  }

  setServerStatus(status: ServerStatus | null): void {
    this.server = status;
    this.render();
  }

  setSession(snapshot: SessionSnapshot): void {
    this.session = snapshot;
    this.render();
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.render();
  }

  private render(): void {
    const model = this.server?.model.name ?? "model";
    const last = this.session?.latency.last ?? this.server?.latency_ms.last ?? null;
    const latency = last === null ? "" : ` · ${Math.round(last)} ms`;
    const icons: Record<ServerState, string> = {
      starting: "$(loading~spin)",
      running: this.enabled ? "$(sparkle)" : "$(circle-slash)",
      stopped: "$(debug-disconnect)",
      failed: "$(error)",
    };
    const off = this.enabled ? "" : " (off)";
    const m = this.server?.model;
    if (this.state === "running" && !this.server) {
      this.item.text = "$(loading~spin) stackcoder: starting";
    } else if (this.state === "running" && m && !m.loaded) {
      // The server is up but its model is not (yet): say so instead of showing a latency.
      this.item.text = m.error ? "$(warning) stackcoder: no model" : "$(loading~spin) stackcoder: loading model";
    } else {
      this.item.text = `${icons[this.state]} stackcoder${this.state === "running" ? `: ${model}${latency}${off}` : ""}`;
    }
    const failed = this.state === "failed" || Boolean(m?.error);
    this.item.backgroundColor = failed ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
    this.item.tooltip = this.tooltip();
  }

  private tooltip(): vscode.MarkdownString {
    const lines = [`**stackcoder** — server ${this.state}${this.detail ? `: ${this.detail}` : ""}`];
    const s = this.server;
    if (s) {
      lines.push(`- model: ${s.model.name ?? "?"} (${s.model.backend ?? "?"})${s.model.error ? ` — ${s.model.error}` : ""}`);
      lines.push(`- index: ${s.index.loaded ? (s.index.path ?? "loaded") : (s.index.error ?? "none")}`);
      if (s.latency_ms.count > 0) lines.push(`- server latency p50/p95: ${fmt(s.latency_ms.p50)} / ${fmt(s.latency_ms.p95)} ms`);
    }
    const session = this.session;
    if (session && session.requested > 0) {
      lines.push(`- this session: ${session.shown} shown, ${session.accepted} accepted, p50 ${fmt(session.latency.p50)} ms`);
    }
    lines.push("", `Click to turn suggestions ${this.enabled ? "off" : "on"}.`);
    const md = new vscode.MarkdownString(lines.join("\n"));
    md.supportThemeIcons = true;
    return md;
  }

  dispose(): void {
    this.item.dispose();
  }
}

function fmt(value: number | null): string {
  return value === null ? "–" : String(Math.round(value));
}
