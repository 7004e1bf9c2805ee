/**
 * Commands as a registry of factories. Commands that need the server show a "not running"
 * message with a Restart button when it is down.
 */
import * as vscode from "vscode";
import { ExecuteCommandRequest, type LanguageClient } from "vscode-languageclient/node";
import type { Ctx } from "./ctx";
import type { Finding } from "./provenance";
import { ServerCommands, WorkspaceFiles } from "./protocol";
import { parseReport, summarizeReport } from "./provenanceFormat";

type Handler = (...args: unknown[]) => unknown;

interface CommandSpec {
  /** True when the command talks to the server. */
  needsServer: boolean;
  factory: (ctx: Ctx) => Handler;
}

function editorOrWarn(action: string): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor) void vscode.window.showWarningMessage(`Open a file and select code to ${action}.`);
  return editor;
}

async function runServerCommand(client: LanguageClient, command: string, editor: vscode.TextEditor, range: vscode.Range): Promise<unknown> {
  return client.sendRequest(ExecuteCommandRequest.type, {
    command,
    arguments: [client.code2ProtocolConverter.asUri(editor.document.uri), client.code2ProtocolConverter.asRange(range)],
  });
}

/** The workspace folder of the active editor, else the only (or a picked) folder; undefined when none. */
async function workspaceFolder(): Promise<vscode.WorkspaceFolder | undefined> {
  const active = vscode.window.activeTextEditor?.document.uri;
  const own = active ? vscode.workspace.getWorkspaceFolder(active) : undefined;
  if (own) return own;
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length <= 1) return folders[0];
  return vscode.window.showWorkspaceFolderPick({ placeHolder: "Which workspace folder?" });
}

/** Opens a file the server keeps in the workspace folder, creating it with `initial` when asked. */
async function openWorkspaceFile(relative: string, initial: string | null, missing: string): Promise<void> {
  const folder = await workspaceFolder();
  if (!folder) {
    void vscode.window.showWarningMessage("stackcoder: open a folder first; these lists are kept per workspace folder.");
    return;
  }
  const uri = vscode.Uri.joinPath(folder.uri, relative);
  try {
    await vscode.workspace.fs.stat(uri);
  } catch {
    if (initial === null) {
      void vscode.window.showInformationMessage(`stackcoder: ${missing}`);
      return;
    }
    await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(initial));
  }
  await vscode.window.showTextDocument(uri, { preview: false });
}

export const COMMANDS: Record<string, CommandSpec> = {
  "stackcoder.infillSelection": {
    needsServer: true,
    factory: (ctx) => async () => {
      const editor = editorOrWarn("infill");
      if (!editor) return;
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "stackcoder: filling in…", cancellable: false },
        () => runServerCommand(ctx.client!, ServerCommands.infill, editor, editor.selection),
      );
    },
  },
  "stackcoder.explainSelection": {
    needsServer: true,
    factory: (ctx) => async () => {
      const editor = editorOrWarn("explain");
      if (!editor) return;
      const doc = editor.document;
      const range = editor.selection.isEmpty ? new vscode.Range(0, 0, doc.lineCount, 0) : editor.selection;
      await ctx.chat.explain(doc.uri, doc.validateRange(range));
    },
  },
  "stackcoder.checkProvenanceSelection": {
    needsServer: true,
    factory: (ctx) => async () => {
      const editor = editorOrWarn("check");
      if (!editor) return;
      const doc = editor.document;
      const range = doc.validateRange(editor.selection.isEmpty ? new vscode.Range(0, 0, doc.lineCount, 0) : editor.selection);
      const report = parseReport(await runServerCommand(ctx.client!, ServerCommands.checkProvenance, editor, range));
      ctx.provenance.addReport(doc.uri, range, report, "check");
      const summary = summarizeReport(report);
      if (report.verdict === "original") {
        void vscode.window.showInformationMessage(`stackcoder: ${summary}`);
      } else {
        const choice = await vscode.window.showWarningMessage(`stackcoder: ${summary}`, "Show Provenance");
        if (choice) await vscode.commands.executeCommand("stackcoder.provenance.focus");
      }
    },
  },
  "stackcoder.openChat": {
    needsServer: false,
    factory: (ctx) => () => ctx.chat.reveal(),
  },
  "stackcoder.clearChat": {
    needsServer: false,
    factory: (ctx) => () => ctx.chat.clear(),
  },
  "stackcoder.restartServer": {
    needsServer: false,
    factory: (ctx) => () => ctx.restart(),
  },
  "stackcoder.triggerSuggestion": {
    needsServer: true,
    factory: (ctx) => async () => {
      ctx.debouncer.reset();
      await vscode.commands.executeCommand("editor.action.inlineSuggest.hide");
      await vscode.commands.executeCommand("editor.action.inlineSuggest.trigger");
    },
  },
  "stackcoder.toggleCompletions": {
    needsServer: false,
    factory: (ctx) => async () => {
      const enabled = !ctx.config.completionEnabled;
      await ctx.config.setCompletionEnabled(enabled);
      void vscode.window.setStatusBarMessage(`stackcoder suggestions ${enabled ? "on" : "off"}`, 2000);
    },
  },
  "stackcoder.showServerStatus": {
    needsServer: false,
    factory: (ctx) => () => ctx.outputChannel.show(true),
  },
  "stackcoder.clearProvenance": {
    needsServer: false,
    factory: (ctx) => () => ctx.provenance.clear(),
  },
  "stackcoder.openMineList": {
    needsServer: false,
    factory: () => () => openWorkspaceFile(WorkspaceFiles.mine, '{\n  "mine": []\n}\n', ""),
  },
  "stackcoder.openReferenceLog": {
    needsServer: false,
    factory: () => () =>
      openWorkspaceFile(
        WorkspaceFiles.referenceLog,
        null,
        "no accepted suggestion or inserted chat code has matched the index in this workspace yet.",
      ),
  },
  "stackcoder.openProvenanceSource": {
    needsServer: false,
    factory: (ctx) => (finding: unknown) => ctx.provenance.openSource(finding as Finding),
  },
};

/** Registers every command of the registry. */
export function registerCommands(ctx: Ctx): vscode.Disposable[] {
  return Object.entries(COMMANDS).map(([id, spec]) => {
    const handler = spec.factory(ctx);
    return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      if (spec.needsServer && !ctx.isRunning) {
        const choice = await vscode.window.showErrorMessage(
          "The stackcoder server is not running; restart it (its log is in the 'stackcoder' output).",
          "Restart Server",
        );
        if (choice) await ctx.restart();
        return undefined;
      }
      try {
        return await handler(...args);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        ctx.outputChannel.appendLine(`[${id}] ${message}`);
        void vscode.window.showErrorMessage(`stackcoder: ${message}`);
        return undefined;
      }
    });
  });
}
