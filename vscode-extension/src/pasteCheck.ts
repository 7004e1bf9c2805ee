/**
 * Checks code pasted into an editor against the attribution index, without being asked: a large
 * insertion (several lines) runs the server's `stackcoder.checkProvenance` on the inserted range,
 * which publishes warnings naming the source repository, path and license.
 */
import * as vscode from "vscode";
import { ExecuteCommandRequest, type LanguageClient } from "vscode-languageclient/node";
import { ServerCommands } from "./protocol";
import { endOfInsertion, looksLikePaste, parseReport } from "./provenanceFormat";

export class PasteCheck implements vscode.Disposable {
  private readonly subscription: vscode.Disposable;
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly client: () => LanguageClient | undefined,
    private readonly enabled: () => boolean,
    private readonly onReport: (uri: vscode.Uri, range: vscode.Range, report: ReturnType<typeof parseReport>) => void,
    private readonly log: (message: string) => void,
  ) {
    this.subscription = vscode.workspace.onDidChangeTextDocument((event) => this.onChange(event));
  }

  private onChange(event: vscode.TextDocumentChangeEvent): void {
    if (!this.enabled() || event.reason !== undefined) return; // undo/redo are not pastes
    if (event.document.uri.scheme !== "file" && event.document.uri.scheme !== "untitled") return;
    for (const change of event.contentChanges) {
      if (!looksLikePaste(change.text)) continue;
      const start = change.range.start;
      const end = endOfInsertion(start, change.text);
      const range = new vscode.Range(start.line, start.character, end.line, end.character);
      const key = event.document.uri.toString();
      clearTimeout(this.pending.get(key));
      // Wait for the document to settle so the server has the pasted text.
      this.pending.set(key, setTimeout(() => void this.check(event.document.uri, range), 300));
    }
  }

  private async check(uri: vscode.Uri, range: vscode.Range): Promise<void> {
    this.pending.delete(uri.toString());
    const client = this.client();
    if (!client?.isRunning()) return;
    try {
      const result = await client.sendRequest(ExecuteCommandRequest.type, {
        command: ServerCommands.checkProvenance,
        arguments: [client.code2ProtocolConverter.asUri(uri), client.code2ProtocolConverter.asRange(range)],
      });
      const report = parseReport(result);
      if (report.verdict !== "original") this.onReport(uri, range, report);
    } catch (error) {
      this.log(`provenance check of pasted code: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  dispose(): void {
    this.subscription.dispose();
    for (const timer of this.pending.values()) clearTimeout(timer);
  }
}
