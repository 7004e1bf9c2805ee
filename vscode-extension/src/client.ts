/**
 * The language client: how the server is spawned, the settings it gets, and the middleware that
 * debounces ghost-text requests and measures what the user sees.
 */
import * as vscode from "vscode";
import {
  CloseAction,
  type CloseHandlerResult,
  ErrorAction,
  type ErrorHandler,
  type ErrorHandlerResult,
  type ExecuteCommandSignature,
  LanguageClient,
  type LanguageClientOptions,
  RevealOutputChannelOn,
  type ServerOptions,
} from "vscode-languageclient/node";
import type { ServerCommand } from "./bootstrap";
import type { Debouncer } from "./debounce";
import type { ServerSettings } from "./settings";

export const CLIENT_ID = "stackcoder";
export const CLIENT_NAME = "stackcoder";

export interface ClientHooks {
  debouncer: Debouncer;
  completionEnabled(): boolean;
  debounceMs(): number;
  /** Current settings, for `workspace/configuration` pulls. */
  settings(): ServerSettings;
  /** A ghost-text request answered after `latencyMs` with `items` suggestions. */
  onAnswer(latencyMs: number, items: number): void;
  /** Every server command run through VS Code (code actions, accepted items) passes here. */
  executeCommand(command: string, args: unknown[], next: ExecuteCommandSignature): Promise<unknown>;
  /** The server process ended unexpectedly: returns whether to restart it. */
  onCrash(): boolean;
}

/** Spawns `stackcoder serve` on stdio with the given settings as initialization options. */
export function createClient(
  server: ServerCommand,
  settings: ServerSettings,
  hooks: ClientHooks,
  outputChannel: vscode.LogOutputChannel,
): LanguageClient {
  const serverOptions: ServerOptions = {
    command: server.command,
    args: server.args,
    options: { env: { ...process.env, PYTHONUNBUFFERED: "1", TOKENIZERS_PARALLELISM: "false" } },
  };
  const errorHandler: ErrorHandler = {
    error: (): ErrorHandlerResult => ({ action: ErrorAction.Continue, handled: true }),
    closed: (): CloseHandlerResult =>
      hooks.onCrash() ? { action: CloseAction.Restart, handled: true } : { action: CloseAction.DoNotRestart, handled: true },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    initializationOptions: { stackcoder: settings },
    outputChannel,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    errorHandler,
    middleware: {
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        if (!hooks.completionEnabled()) return null;
        if (context.triggerKind === vscode.InlineCompletionTriggerKind.Automatic) {
          if (!(await hooks.debouncer.wait(hooks.debounceMs(), token))) return null;
        } else {
          hooks.debouncer.reset();
        }
        const started = Date.now();
        const result = await next(document, position, context, token);
        if (!token.isCancellationRequested) {
          const items = Array.isArray(result) ? result.length : (result?.items.length ?? 0);
          hooks.onAnswer(Date.now() - started, items);
        }
        return result;
      },
      executeCommand: (command, args, next) => hooks.executeCommand(command, args, next),
      workspace: {
        configuration: async (params, token, next) => {
          const answers = await next(params, token);
          if (!Array.isArray(answers)) return answers;
          return params.items.map((item, i) => (item.section === CLIENT_ID ? hooks.settings() : answers[i]));
        },
      },
    },
  };
  return new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);
}
