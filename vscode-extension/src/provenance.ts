/**
 * Provenance findings in one place: the server's diagnostics (source "stackcoder"), reports of
 * "Check Provenance", and accepted suggestions. Shown in the Provenance tree view, with the
 * matching source opened side by side; accepted copied suggestions get a code lens and a hover
 * right where they were inserted.
 */
import * as fs from "node:fs";
import * as vscode from "vscode";
import { type AttributionMatch, type AttributionReport, DIAGNOSTIC_SOURCE, type MineEntry } from "./protocol";
import { describeMatch, entryCovers, firstCodeBlock, sourceLines } from "./provenanceFormat";

export type FindingOrigin = "diagnostic" | "check" | "accepted" | "chat";

export interface Finding {
  uri: vscode.Uri;
  range: vscode.Range;
  match: AttributionMatch;
  origin: FindingOrigin;
}

const SOURCE_SCHEME = "stackcoder-source";

/** Virtual read-only documents holding matching source text. */
class SourceDocuments implements vscode.TextDocumentContentProvider {
  private readonly contents = new Map<string, string>();
  private counter = 0;

  add(title: string, text: string): vscode.Uri {
    const uri = vscode.Uri.from({ scheme: SOURCE_SCHEME, path: `/${++this.counter}/${title}` });
    this.contents.set(uri.toString(), text);
    return uri;
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? "";
  }
}

type Node = { kind: "finding"; finding: Finding } | { kind: "detail"; label: string; finding: Finding; link?: string };

export class Provenance implements vscode.TreeDataProvider<Node>, vscode.CodeLensProvider, vscode.HoverProvider, vscode.Disposable {
  private checked: Finding[] = [];
  private accepted: Finding[] = [];
  private chat: Finding[] = [];
  private chatBlocks = 0;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  readonly onDidChangeCodeLenses = this.changed.event;
  private readonly sources = new SourceDocuments();
  private readonly disposables: vscode.Disposable[] = [];

  constructor() {
    this.disposables.push(
      this.changed,
      vscode.workspace.registerTextDocumentContentProvider(SOURCE_SCHEME, this.sources),
      vscode.languages.onDidChangeDiagnostics(() => this.changed.fire()),
      vscode.workspace.onDidChangeTextDocument((event) => this.shift(event)),
      vscode.languages.registerCodeLensProvider({ scheme: "file" }, this),
      vscode.languages.registerCodeLensProvider({ scheme: "untitled" }, this),
      vscode.languages.registerHoverProvider({ scheme: "file" }, this),
      vscode.languages.registerHoverProvider({ scheme: "untitled" }, this),
    );
  }

  /** Findings from the server's diagnostics on every open document. */
  diagnosticFindings(): Finding[] {
    const findings: Finding[] = [];
    for (const [uri, diagnostics] of vscode.languages.getDiagnostics()) {
      for (const d of diagnostics) {
        const match = (d as vscode.Diagnostic & { data?: { match?: AttributionMatch } }).data?.match;
        if (d.source === DIAGNOSTIC_SOURCE && match) findings.push({ uri, range: d.range, match, origin: "diagnostic" });
      }
    }
    return findings;
  }

  /** Every finding once: the server's diagnostics first, then accepted suggestions and checks. */
  all(): Finding[] {
    const seen = new Set<string>();
    const key = (f: Finding) => [f.uri.toString(), f.range.start.line, f.match.repo, f.match.path, f.match.source_start_line].join("|");
    return [...this.diagnosticFindings(), ...this.accepted, ...this.checked, ...this.chat].filter((f) => {
      const k = key(f);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }

  /** Records the report of a check of `range` in `uri` (query lines are relative to the range). */
  addReport(uri: vscode.Uri, range: vscode.Range, report: AttributionReport, origin: "check" | "accepted"): Finding[] {
    const findings = report.matches.map((match) => {
      const start = Math.min(range.start.line + match.query_start_line - 1, range.end.line);
      const end = Math.min(range.start.line + match.query_end_line - 1, range.end.line);
      const lineRange = new vscode.Range(start, start === range.start.line ? range.start.character : 0, end, end === range.end.line ? range.end.character : Number.MAX_SAFE_INTEGER);
      return { uri, range: origin === "accepted" ? range : lineRange, match, origin };
    });
    if (origin === "accepted") this.accepted = [...findings, ...this.accepted].slice(0, 100);
    else this.checked = [...findings, ...this.checked.filter((f) => f.uri.toString() !== uri.toString())].slice(0, 200);
    this.changed.fire();
    return findings;
  }

  /** Records the findings of a chat answer's code block (shown as a read-only document of its own). */
  addChatBlock(code: string, report: AttributionReport): Finding[] {
    const uri = this.sources.add(`chat-code-${++this.chatBlocks}.txt`, code);
    const lastLine = Math.max(code.split("\n").length - 1, 0);
    const findings = report.matches.map((match) => {
      const start = Math.min(Math.max(match.query_start_line - 1, 0), lastLine);
      const end = Math.min(Math.max(match.query_end_line - 1, start), lastLine);
      return { uri, range: new vscode.Range(start, 0, end, Number.MAX_SAFE_INTEGER), match, origin: "chat" as const };
    });
    this.chat = [...findings, ...this.chat].slice(0, 100);
    this.changed.fire();
    return findings;
  }

  /** Drops the findings (kept by this view) that an entry of the user's own code now covers. */
  forgetMine(entry: MineEntry): void {
    const keep = (f: Finding) => !entryCovers(entry, f.match);
    this.checked = this.checked.filter(keep);
    this.accepted = this.accepted.filter(keep);
    this.chat = this.chat.filter(keep);
    this.changed.fire();
  }

  clear(): void {
    this.checked = [];
    this.accepted = [];
    this.chat = [];
    this.changed.fire();
  }

  /** Keeps accepted findings on their lines when lines are added or removed above them. */
  private shift(event: vscode.TextDocumentChangeEvent): void {
    let moved = false;
    for (const change of event.contentChanges) {
      const delta = change.text.split("\n").length - 1 - (change.range.end.line - change.range.start.line);
      if (delta === 0) continue;
      for (const f of this.accepted) {
        if (f.uri.toString() === event.document.uri.toString() && change.range.end.line < f.range.start.line) {
          f.range = new vscode.Range(f.range.start.translate(delta), f.range.end.translate(delta));
          moved = true;
        }
      }
    }
    if (moved) this.changed.fire();
  }

  getTreeItem(node: Node): vscode.TreeItem {
    const f = node.finding;
    if (node.kind === "detail") {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
      if (node.link) item.command = { command: "vscode.open", title: "Open", arguments: [vscode.Uri.parse(node.link)] };
      return item;
    }
    const item = new vscode.TreeItem(`${f.match.repo}/${f.match.path}`, vscode.TreeItemCollapsibleState.Collapsed);
    const where = f.origin === "chat" ? "chat answer" : `${vscode.workspace.asRelativePath(f.uri)}:${f.range.start.line + 1}`;
    const fit = f.match.license_fit;
    item.description = `${f.match.license || "unknown license"}${fit ? ` (${fit.verdict})` : ""} · ${f.match.kind} ${f.match.score.toFixed(2)} · ${where}`;
    const what = { accepted: "Accepted suggestion", chat: "Chat code block", check: "Code", diagnostic: "Code" }[f.origin];
    item.tooltip = new vscode.MarkdownString(
      `**${what} matches the corpus**\n\n${describeMatch(f.match)}` +
        (fit ? `\n\n${fit.text}` : "") +
        (f.match.url ? `\n\n[${f.match.url}](${f.match.url})` : ""),
    );
    item.iconPath = new vscode.ThemeIcon(
      f.match.kind === "bm25" ? "info" : fit?.verdict === "incompatible" ? "error" : "warning",
    );
    item.contextValue = "finding";
    item.command = { command: "stackcoder.openProvenanceSource", title: "Compare with Source", arguments: [f] };
    return item;
  }

  getChildren(node?: Node): Node[] {
    if (!node) return this.all().map((finding) => ({ kind: "finding", finding }));
    if (node.kind === "detail") return [];
    const m = node.finding.match;
    const details: Node[] = [
      { kind: "detail", label: `repository: ${m.repo}`, finding: node.finding },
      { kind: "detail", label: `path: ${m.path} (${sourceLines(m)})`, finding: node.finding },
      { kind: "detail", label: `license: ${m.license || "unknown"}`, finding: node.finding },
    ];
    if (m.license_fit) details.push({ kind: "detail", label: `license fit: ${m.license_fit.text}`, finding: node.finding });
    if (m.url) details.push({ kind: "detail", label: `link: ${m.url}`, finding: node.finding, link: m.url });
    return details;
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    return this.accepted
      .filter((f) => f.uri.toString() === document.uri.toString())
      .map(
        (f) =>
          new vscode.CodeLens(f.range, {
            title: `$(warning) stackcoder: accepted suggestion ${f.match.kind === "bm25" ? "resembles" : "copies"} ${describeMatch(f.match)}`,
            command: "stackcoder.openProvenanceSource",
            arguments: [f],
          }),
      );
  }

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | null {
    const hits = this.accepted.filter((f) => f.uri.toString() === document.uri.toString() && f.range.contains(position));
    if (hits.length === 0) return null;
    const md = new vscode.MarkdownString(
      hits
        .map((f) => `**stackcoder:** this accepted suggestion matches ${describeMatch(f.match)}${f.match.url ? ` — [source](${f.match.url})` : ""}`)
        .join("\n\n"),
    );
    return new vscode.Hover(md, hits[0].range);
  }

  /** Opens the finding's code and, beside it, the matching source. */
  async openSource(finding: Finding): Promise<void> {
    await vscode.window.showTextDocument(finding.uri, { selection: finding.range, viewColumn: vscode.ViewColumn.One, preview: true });
    const m = finding.match;
    const local = localSource(m);
    const selection = new vscode.Range(Math.max(m.source_start_line - 1, 0), 0, Math.max(m.source_end_line - 1, 0), Number.MAX_SAFE_INTEGER);
    if (local) {
      await vscode.window.showTextDocument(local, { viewColumn: vscode.ViewColumn.Beside, selection, preview: true, preserveFocus: true });
      return;
    }
    const hovers = await vscode.commands.executeCommand<vscode.Hover[]>("vscode.executeHoverProvider", finding.uri, finding.range.start);
    const texts = (hovers ?? []).flatMap((h) => h.contents.map((c) => (typeof c === "string" ? c : c.value)));
    const code = texts.map(firstCodeBlock).find((c): c is string => c !== null);
    const header = `# ${describeMatch(m)}\n# ${m.url ?? "no link recorded in the index"}\n`;
    const body = code ?? "# The matching source is not available locally; follow the link above.";
    const uri = this.sources.add(m.path.split("/").pop() ?? "source", `${header}\n${body}\n`);
    const doc = await vscode.workspace.openTextDocument(uri);
    const lang = (await vscode.workspace.openTextDocument(finding.uri)).languageId;
    await vscode.languages.setTextDocumentLanguage(doc, lang);
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true, preserveFocus: true });
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** The matching file on this machine, when the index recorded a local path or file:// link. */
function localSource(m: AttributionMatch): vscode.Uri | null {
  const candidates: string[] = [];
  if (m.url?.startsWith("file://")) candidates.push(vscode.Uri.parse(m.url).fsPath);
  if (m.path.startsWith("/")) candidates.push(m.path);
  return candidates.map((c) => (fs.existsSync(c) ? vscode.Uri.file(c) : null)).find((u) => u !== null) ?? null;
}
