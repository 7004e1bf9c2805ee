/** Entry point: builds the context, registers the commands, starts the server. */
import type * as vscode from "vscode";
import { registerCommands } from "./commands";
import { Ctx } from "./ctx";

let ctx: Ctx | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  ctx = new Ctx(context);
  context.subscriptions.push(ctx, ...registerCommands(ctx));
  // A server that cannot start leaves the commands, chat history and a visible error behind.
  await ctx.start().catch(() => undefined);
}

export async function deactivate(): Promise<void> {
  await ctx?.stop();
  ctx = undefined;
}
