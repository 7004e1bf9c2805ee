/**
 * The language client: how the server is spawned, the settings it gets, and the middleware that
 * debounces ghost-text requests and measures what the user sees. A suggestion the server's cache
 * already holds (typed through, prefetched, warmed up) is asked for first and shown without the
 * debounce.
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
import { CachedCompletionRequest } from "./protocol";
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
        const started = Date.now();
        if (context.triggerKind === vscode.InlineCompletionTriggerKind.Automatic) {
          const cached = await fromCache(document, position, context, token);
          if (cached !== undefined) {
            hooks.debouncer.reset(); // this keystroke is answered: earlier debounced ones are stale
            hooks.onAnswer(Date.now() - started, cached.items.length);
            return cached;
          }
          if (!(await hooks.debouncer.wait(hooks.debounceMs(), token))) return null;
        } else {
          hooks.debouncer.reset();
        }
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
  const client = new LanguageClient(CLIENT_ID, CLIENT_NAME, serverOptions, clientOptions);

  /** The server's cached suggestion for this keystroke, or undefined when it has none. */
  async function fromCache(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionList | undefined> {
    try {
      const params = client.code2ProtocolConverter.asInlineCompletionParams(document, position, context);
      const result = await client.sendRequest(CachedCompletionRequest, params, token);
      if (!result || result.items.length === 0 || token.isCancellationRequested) return undefined;
      return await client.protocol2CodeConverter.asInlineCompletionResult(result, token);
    } catch {
      return undefined; // an older server without the request, or a restart: ask the usual way
    }
  }

  return client;
}
