/**
 * Sends `stackcoder/warmCursor` when the cursor settles at a new place in a code editor (see
 * `warmPlanner.ts` for when), so the server computes the completion there before the first
 * keystroke.
 */
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";
import { WarmCursorNotification } from "./protocol";
import { type CursorSpot, WarmPlanner } from "./warmPlanner";

/** How long the cursor must rest before its place is warmed up (arrow keys held down send none). */
export const WARM_DELAY_MS = 250;

export class CursorWarm implements vscode.Disposable {
  private readonly planner = new WarmPlanner(WARM_DELAY_MS, (spot) => this.send(spot));
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly client: () => LanguageClient | undefined,
    private readonly enabled: () => boolean,
  ) {
    this.subscriptions = [
      vscode.window.onDidChangeTextEditorSelection((event) => this.consider(event.textEditor.document, event.selections)),
      // a file opened or brought to the front: its cursor's place (and the document window around
      // it, which serves the places nearby) is warmed up as if the cursor had moved there
      vscode.window.onDidChangeActiveTextEditor((editor) => editor && this.consider(editor.document, editor.selections)),
      vscode.workspace.onDidCloseTextDocument((doc) => this.planner.forget(doc.uri.toString())),
    ];
    const active = vscode.window.activeTextEditor;
    if (active) this.consider(active.document, active.selections);
  }

  private consider(doc: vscode.TextDocument, selections: readonly vscode.Selection[]): void {
    const cursor = selections.length === 1 && selections[0].isEmpty ? selections[0].active : undefined;
    if (!this.enabled() || cursor === undefined || (doc.uri.scheme !== "file" && doc.uri.scheme !== "untitled")) {
      this.planner.cancel();
      return;
    }
    this.planner.cursorMoved({ uri: doc.uri.toString(), version: doc.version, line: cursor.line, character: cursor.character });
  }

  private send(spot: CursorSpot): void {
    const client = this.client();
    if (!client?.isRunning()) return;
    const uri = client.code2ProtocolConverter.asUri(vscode.Uri.parse(spot.uri));
    client
      .sendNotification(WarmCursorNotification, {
        textDocument: { uri },
        position: { line: spot.line, character: spot.character },
      })
      .catch(() => undefined); // a server restarting meanwhile: nothing to warm
  }

  dispose(): void {
    this.planner.cancel();
    for (const subscription of this.subscriptions) subscription.dispose();
  }
}
