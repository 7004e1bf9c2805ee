/**
 * The chat panel, a webview view in the stackcoder side bar: questions with the selection or file
 * attached, answers streamed through `$/progress`, a stop button, history per workspace.
 */
import { randomBytes } from "node:crypto";
import * as vscode from "vscode";
import { ExecuteCommandRequest, type LanguageClient } from "vscode-languageclient/node";
import {
  type AttributionReport,
  AttributionRequest,
  type ChatContext,
  ChatRequest,
  ExplainRequest,
  type InsertedCode,
  ServerCommands,
  type TextResult,
  TextDeltaProgress,
  WarmChatNotification,
} from "../protocol";
import { blockMarkText, parseReport, worstFit } from "../provenanceFormat";
import { fencedBlocks, worthChecking } from "./codeBlocks";
import { answerNote, appendEntry, finalAnswerText, sanitizeHistory, toServerMessages } from "./history";
import { type Attach, type CodeMark, type HistoryEntry, parseFromWebview, type ToWebview } from "./messages";

const HISTORY_KEY = "stackcoder.chat.history";
export const CHAT_VIEW_ID = "stackcoder.chat";

/** How long the check of an answer's code blocks may hold back the end of the answer. */
const BLOCK_CHECK_TIMEOUT_MS = 5000;

/** A chat code block that matched the corpus, for the Provenance view. */
export interface BlockFinding {
  code: string;
  report: AttributionReport;
}

/** What the chat needs from the rest of the extension for provenance. */
export interface ChatProvenance {
  enabled(): boolean;
  onBlockFindings(findings: BlockFinding[]): void;
}

interface Streaming {
  user: HistoryEntry;
  text: string;
  cancel: vscode.CancellationTokenSource;
}

export class ChatPanel implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private streaming: Streaming | null = null;
  private lastEditor: vscode.TextEditor | undefined = vscode.window.activeTextEditor;
  private readonly disposables: vscode.Disposable[] = [];
  private counter = 0;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly state: vscode.Memento,
    private readonly client: () => LanguageClient | undefined,
    private readonly log: (message: string) => void = () => undefined,
    private readonly provenance: ChatProvenance = { enabled: () => false, onBlockFindings: () => undefined },
  ) {
    this.disposables.push(
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (editor) this.lastEditor = editor;
      }),
    );
  }

  get history(): HistoryEntry[] {
    return sanitizeHistory(this.state.get(HISTORY_KEY));
  }

  private async saveEntry(entry: HistoryEntry): Promise<void> {
    await this.state.update(HISTORY_KEY, appendEntry(this.history, entry));
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const media = vscode.Uri.joinPath(this.extensionUri, "media");
    const dist = vscode.Uri.joinPath(this.extensionUri, "dist", "webview");
    view.webview.options = { enableScripts: true, localResourceRoots: [media, dist] };
    view.webview.html = this.html(view.webview);
    this.disposables.push(
      view.webview.onDidReceiveMessage((raw) => this.receive(raw)),
      view.onDidDispose(() => (this.view = undefined)),
    );
  }

  /** Shows the chat view. */
  async reveal(): Promise<void> {
    await vscode.commands.executeCommand(`${CHAT_VIEW_ID}.focus`);
  }

  private post(message: ToWebview): void {
    void this.view?.webview.postMessage(message);
  }

  private async receive(raw: unknown): Promise<void> {
    const message = parseFromWebview(raw);
    if (!message) {
      this.log(`chat: ignored a malformed message from the webview: ${JSON.stringify(raw)?.slice(0, 200)}`);
      return;
    }
    this.log(`chat: ${message.type}${message.type === "stop" ? ` (answer streaming: ${this.streaming !== null})` : ""}`);
    switch (message.type) {
      case "ready":
        this.post({ type: "history", entries: this.history, busy: false });
        if (this.streaming) {
          this.post({ type: "start", user: this.streaming.user });
          this.post({ type: "delta", text: this.streaming.text });
        }
        break;
      case "ask":
        await this.ask(message.text, message.attach);
        break;
      case "compose":
        this.warm(message.attach);
        break;
      case "stop":
        this.streaming?.cancel.cancel();
        break;
      case "insert":
        await this.insert(message.code);
        break;
      case "copy":
        await vscode.env.clipboard.writeText(message.code);
        break;
      case "clear":
        await this.clear();
        break;
    }
  }

  async clear(): Promise<void> {
    this.streaming?.cancel.cancel();
    await this.state.update(HISTORY_KEY, []);
    this.post({ type: "history", entries: [], busy: false });
  }

  private context(attach: Attach): { context?: ChatContext; label?: string } {
    const editor = this.lastEditor;
    if (!editor || attach === "none") return {};
    const doc = editor.document;
    const name = vscode.workspace.asRelativePath(doc.uri);
    const base: ChatContext = { uri: doc.uri.toString(), languageId: doc.languageId };
    if (attach === "selection" && !editor.selection.isEmpty) {
      return { context: { ...base, selection: doc.getText(editor.selection) }, label: `selection of ${name}` };
    }
    return { context: { ...base, fileText: doc.getText() }, label: `file ${name}` };
  }

  /** Tells the server a question about this context is being written, so that it processes the
   * prompt's head (the history, the file, the selection) before the question is sent. */
  private warm(attach: Attach): void {
    const client = this.client();
    if (!client?.isRunning() || this.streaming) return;
    const { context } = this.context(attach);
    // the turns the question will be sent with (the newest ones), without the question
    const messages = toServerMessages([...this.history, { role: "user", content: "?" }]).slice(0, -1);
    client.sendNotification(WarmChatNotification, { messages, ...(context ? { context } : {}) }).catch(() => undefined);
  }

  /** Sends a question with the history and the attached context; the answer streams in. */
  async ask(text: string, attach: Attach): Promise<void> {
    const { context, label } = this.context(attach);
    const user: HistoryEntry = { role: "user", content: text, ...(label ? { context: label } : {}) };
    const messages = toServerMessages([...this.history, user]);
    await this.run(user, (client, token, partialResultToken) =>
      client.sendRequest(ChatRequest, { messages, ...(context ? { context } : {}), partialResultToken }, token),
    );
  }

  /** Explains a range of a document; the question and the streamed answer land in the chat. */
  async explain(uri: vscode.Uri, range: vscode.Range): Promise<void> {
    const doc = await vscode.workspace.openTextDocument(uri);
    const code = doc.getText(range);
    const name = vscode.workspace.asRelativePath(uri);
    const user: HistoryEntry = {
      role: "user",
      content: `Explain this code:\n\n\`\`\`${doc.languageId}\n${code}\n\`\`\``,
      context: `${name} lines ${range.start.line + 1}–${range.end.line + 1}`,
    };
    await this.reveal();
    await this.run(user, (client, token, partialResultToken) =>
      client.sendRequest(
        ExplainRequest,
        {
          textDocument: { uri: client.code2ProtocolConverter.asUri(uri) },
          range: client.code2ProtocolConverter.asRange(range),
          partialResultToken,
        },
        token,
      ),
    );
  }

  private async run(
    user: HistoryEntry,
    send: (client: LanguageClient, token: vscode.CancellationToken, partial: string) => Promise<TextResult>,
  ): Promise<void> {
    const client = this.client();
    if (!client || !client.isRunning()) {
      this.post({ type: "error", message: "The stackcoder server is not running; run 'stackcoder: Restart Server'." });
      return;
    }
    if (this.streaming) this.streaming.cancel.cancel();
    const streaming: Streaming = { user, text: "", cancel: new vscode.CancellationTokenSource() };
    this.streaming = streaming;
    await this.saveEntry(user);
    this.post({ type: "start", user });
    const partial = `stackcoder-chat-${process.pid}-${++this.counter}`;
    const progress = client.onProgress(TextDeltaProgress, partial, (value) => {
      if (this.streaming !== streaming || typeof value?.text !== "string") return;
      streaming.text += value.text;
      this.post({ type: "delta", text: value.text });
    });
    let answer: HistoryEntry;
    try {
      const result = await send(client, streaming.cancel.token, partial);
      // A server may answer a cancelled request with the text it had so far, or with less.
      const stopped = streaming.cancel.token.isCancellationRequested;
      const text = finalAnswerText(result, streaming.text, stopped);
      const note = answerNote(result, text, stopped);
      const marks = await this.checkBlocks(client, text);
      answer = { role: "assistant", content: text, ...(note ? { note } : {}), ...(marks.length ? { marks } : {}) };
    } catch (error) {
      const stopped = streaming.cancel.token.isCancellationRequested;
      const note = stopped ? "stopped" : `error: ${error instanceof Error ? error.message : String(error)}`;
      answer = { role: "assistant", content: streaming.text, note };
    } finally {
      progress.dispose();
      streaming.cancel.dispose();
    }
    if (this.streaming === streaming) this.streaming = null;
    this.post({ type: "end", entry: answer });
    await this.saveEntry(answer);
  }

  /**
   * Checks the answer's code blocks against the index (read for the workspace of the last editor):
   * marks for the blocks that match, and their findings for the Provenance view.
   */
  private async checkBlocks(client: LanguageClient, text: string): Promise<CodeMark[]> {
    if (!this.provenance.enabled()) return [];
    const uri = this.lastEditor ? client.code2ProtocolConverter.asUri(this.lastEditor.document.uri) : undefined;
    const checks = fencedBlocks(text).map(async (code, index) => {
      if (!worthChecking(code)) return null;
      const report = parseReport(await client.sendRequest(AttributionRequest, { text: code, ...(uri ? { uri } : {}) }));
      const markText = blockMarkText(report);
      if (!markText || report.verdict === "original") return null;
      const fit = worstFit(report);
      const mark: CodeMark = { index, verdict: report.verdict, text: markText, ...(fit ? { fit } : {}) };
      return { mark, finding: { code, report } };
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), BLOCK_CHECK_TIMEOUT_MS)));
    try {
      const results = await Promise.race([Promise.all(checks), timeout]);
      if (results === null) {
        this.log("chat: the provenance check of the answer's code took too long; the blocks are not marked");
        return [];
      }
      const found = results.filter((r) => r !== null);
      if (found.length) this.provenance.onBlockFindings(found.map((r) => r.finding));
      return found.map((r) => r.mark);
    } catch (error) {
      this.log(`chat: provenance check of code blocks: ${error instanceof Error ? error.message : String(error)}`);
      return [];
    } finally {
      clearTimeout(timer);
    }
  }

  private async insert(code: string): Promise<void> {
    const editor = this.lastEditor;
    if (!editor || editor.document.isClosed) {
      void vscode.window.showWarningMessage("Open an editor and place the cursor where the code should go, then click Insert again.");
      return;
    }
    await vscode.window.showTextDocument(editor.document, editor.viewColumn);
    const starts = [...editor.selections].sort((a, b) => a.start.compareTo(b.start));
    const inserted = await editor.edit((edit) => {
      for (const selection of editor.selections) edit.replace(selection, code);
    });
    if (inserted) void this.recordInsertion(editor.document.uri, starts, code);
  }

  /** Tells the server where chat code went: it checks it, shows its findings and logs a copy. */
  private async recordInsertion(uri: vscode.Uri, selections: vscode.Selection[], code: string): Promise<void> {
    const client = this.client();
    if (!client?.isRunning() || !this.provenance.enabled() || !worthChecking(code)) return;
    const added = code.split("\n").length - 1;
    let shift = 0;
    for (const selection of selections) {
      const line = selection.start.line + shift;
      shift += added - (selection.end.line - selection.start.line);
      const lines = code.split("\n");
      const end = { line: line + added, character: lines.length === 1 ? selection.start.character + code.length : lines[lines.length - 1].length };
      const argument: InsertedCode = {
        uri: client.code2ProtocolConverter.asUri(uri),
        text: code,
        range: { start: { line, character: selection.start.character }, end },
        origin: "chat",
      };
      try {
        await client.sendRequest(ExecuteCommandRequest.type, { command: ServerCommands.didInsertCode, arguments: [argument] });
      } catch (error) {
        this.log(`chat: recording the inserted code: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  private html(webview: vscode.Webview): string {
    const nonce = randomBytes(16).toString("base64");
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "dist", "webview", "chat.js"));
    const style = webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "media", "chat.css"));
    const csp = [
      "default-src 'none'",
      `style-src ${webview.cspSource}`,
      `img-src ${webview.cspSource} data:`,
      `font-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
    ].join("; ");
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link href="${style}" rel="stylesheet">
<title>stackcoder chat</title>
</head>
<body>
<div id="log" role="log" aria-live="polite"></div>
<div id="composer">
  <textarea id="input" rows="3" placeholder="Ask about your code (Enter to send, Shift+Enter for a new line)"></textarea>
  <div id="controls">
    <label>Attach <select id="attach">
      <option value="selection">selection</option>
      <option value="file">file</option>
      <option value="none">nothing</option>
    </select></label>
    <button id="stop" hidden title="Stop the answer">Stop</button>
    <button id="send" title="Send">Send</button>
  </div>
</div>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
  }

  dispose(): void {
    this.streaming?.cancel.cancel();
    for (const d of this.disposables) d.dispose();
  }
}
