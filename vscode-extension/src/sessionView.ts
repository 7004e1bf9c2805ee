/** The Session view: this session's suggestion latency and acceptance next to the server's own numbers. */
import * as vscode from "vscode";
import type { ServerStatus } from "./protocol";
import type { SessionSnapshot } from "./session";

interface Row {
  label: string;
  value: string;
  icon: string;
}

export class SessionView implements vscode.TreeDataProvider<Row> {
  private session: SessionSnapshot | null = null;
  private server: ServerStatus | null = null;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;

  update(session: SessionSnapshot | null, server: ServerStatus | null): void {
    if (session) this.session = session;
    if (server) this.server = server;
    this.changed.fire();
  }

  getTreeItem(row: Row): vscode.TreeItem {
    const item = new vscode.TreeItem(row.label);
    item.description = row.value;
    item.iconPath = new vscode.ThemeIcon(row.icon);
    return item;
  }

  getChildren(): Row[] {
    const s = this.session;
    const ms = (v: number | null | undefined) => (v === null || v === undefined ? "–" : `${Math.round(v)} ms`);
    const rows: Row[] = [];
    if (s) {
      const rate = s.acceptanceRate === null ? "–" : `${Math.round(s.acceptanceRate * 100)}%`;
      rows.push(
        { label: "Suggestions requested", value: String(s.requested), icon: "symbol-event" },
        { label: "Suggestions shown", value: String(s.shown), icon: "eye" },
        { label: "Accepted", value: `${s.accepted} (${rate})`, icon: "check" },
        { label: "Latency last", value: ms(s.latency.last), icon: "watch" },
        { label: "Latency p50 / p95", value: `${ms(s.latency.p50)} / ${ms(s.latency.p95)}`, icon: "graph" },
      );
    }
    const srv = this.server;
    if (srv) {
      // Right below the client's own counts: what the server counted through stackcoder.didAcceptCompletion.
      rows.splice(Math.min(rows.length, 3), 0, {
        label: "Server shown / accepted",
        value: `${srv.completions.shown} / ${srv.completions.accepted}`,
        icon: "pass",
      });
      rows.push(
        { label: "Model", value: `${srv.model.name ?? "?"} (${srv.model.backend ?? "?"})`, icon: "hubot" },
        { label: "Server p50 / p95", value: `${ms(srv.latency_ms.p50)} / ${ms(srv.latency_ms.p95)}`, icon: "server" },
        ...(srv.engine
          ? [
              {
                label: "Model runs / from cache",
                value: `${srv.engine.model_runs} / ${srv.engine.cache_hits} (${srv.engine.prefetched} prefetched, ${srv.engine.warmed} warmed)`,
                icon: "zap",
              },
            ]
          : []),
        { label: "Index", value: srv.index.loaded ? (srv.index.path ?? "loaded") : (srv.index.error ?? "none"), icon: "database" },
      );
    }
    return rows;
  }
}
