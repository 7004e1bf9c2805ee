/**
 * The extension's state and the server's lifecycle: start, stop, restart (also after a crash,
 * within limits), settings pushed to the server, and what happens when a suggestion is accepted.
 */
import * as vscode from "vscode";
import { type ExecuteCommandSignature, type LanguageClient, State } from "vscode-languageclient/node";
import { needsConsent, resolveServer, type ServerCommand } from "./bootstrap";
import { ChatPanel } from "./chat/panel";
import { createClient } from "./client";
import { Config } from "./config";
import { CursorWarm } from "./cursorWarm";
import { Debouncer } from "./debounce";
import { PasteCheck } from "./pasteCheck";
import { Provenance } from "./provenance";
import { type AcceptedCompletion, AttributionRequest, type MarkMineResult, ServerCommands, StatusRequest } from "./protocol";
import { endOfInsertion, parseReport } from "./provenanceFormat";
import { RestartLimiter } from "./restart";
import { SessionStats } from "./session";
import { SessionView } from "./sessionView";
import type { ServerSettings } from "./settings";
import { StatusBar } from "./status";

const STATUS_POLL_MS = 5000;

export class Ctx implements vscode.Disposable {
  client: LanguageClient | undefined;
  readonly config = new Config();
  readonly debouncer = new Debouncer();
  readonly stats = new SessionStats();
  readonly limiter = new RestartLimiter();
  readonly outputChannel = vscode.window.createOutputChannel("stackcoder", { log: true });
  readonly statusBar = new StatusBar();
  readonly provenance = new Provenance();
  readonly sessionView = new SessionView();
  readonly chat: ChatPanel;
  private settings: ServerSettings | undefined;
  private poll: NodeJS.Timeout | undefined;
  private clientDisposables: vscode.Disposable[] = [];
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly extension: vscode.ExtensionContext) {
    this.chat = new ChatPanel(extension.extensionUri, extension.workspaceState, () => this.client, (m) => this.log(m), {
      enabled: () => this.config.provenanceEnabled,
      onBlockFindings: (found) => {
        for (const { code, report } of found) this.provenance.addChatBlock(code, report);
      },
    });
    this.statusBar.setEnabled(this.config.completionEnabled);
    this.disposables.push(
      this.outputChannel,
      this.statusBar,
      this.provenance,
      this.chat,
      vscode.window.registerWebviewViewProvider("stackcoder.chat", this.chat, { webviewOptions: { retainContextWhenHidden: true } }),
      vscode.window.registerTreeDataProvider("stackcoder.provenance", this.provenance),
      vscode.window.registerTreeDataProvider("stackcoder.session", this.sessionView),
      vscode.workspace.onDidChangeConfiguration((event) => this.onConfigurationChanged(event)),
      new CursorWarm(
        () => this.client,
        () => this.config.completionEnabled && this.config.warmOnCursorMove,
      ),
      new PasteCheck(
        () => this.client,
        () => this.config.provenanceEnabled,
        (uri, range, report) => this.provenance.addReport(uri, range, report, "check"),
        (message) => this.log(message),
      ),
    );
  }

  get isRunning(): boolean {
    return this.client?.state === State.Running;
  }

  private log(message: string): void {
    this.outputChannel.info(message);
  }

  /** Finds and starts the server; failures are shown to the user and rethrown. */
  async start(): Promise<void> {
    this.statusBar.setState("starting");
    try {
      this.settings = this.config.serverSettings();
      const input = {
        settingPath: this.config.serverPath,
        extraArgs: this.config.serverExtraArgs,
        env: process.env,
        searchRoots: [this.extension.extensionUri.fsPath],
        workspaceRoots: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      };
      let server = resolveServer(input);
      if (needsConsent(server) && !(await this.allowWorkspaceServer(server))) {
        server = resolveServer({ ...input, workspaceRoots: [] });
      }
      this.log(`starting ${server.command} ${server.args.join(" ")} (found via ${server.source})`);
      this.log(`settings ${JSON.stringify(this.settings)}`);
      const client = createClient(server, this.settings, this.hooks(), this.outputChannel);
      this.client = client;
      this.clientDisposables.push(
        client.onDidChangeState((event) => {
          if (event.newState === State.Running) this.statusBar.setState("running");
          if (event.newState === State.Starting) this.statusBar.setState("starting");
        }),
      );
      await client.start();
      this.registerAcceptCommand(client);
      this.statusBar.setState("running");
      this.startPolling();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.statusBar.setState("failed", message);
      this.log(`start failed: ${message}`);
      void vscode.window.showErrorMessage(`stackcoder: ${message}`, "Show Output").then((c) => c && this.outputChannel.show());
      throw error;
    }
  }

  /**
   * Asks once per file before running a server that a workspace folder brought (remembered per
   * path); never in a restricted workspace.
   */
  private async allowWorkspaceServer(server: ServerCommand): Promise<boolean> {
    if (!vscode.workspace.isTrusted) {
      this.log(`not running ${server.command}: it is in a restricted workspace`);
      return false;
    }
    const key = `stackcoder.allowedServer:${server.command}`;
    if (this.extension.globalState.get<boolean>(key)) return true;
    const choice = await vscode.window.showWarningMessage(
      `Run ${server.command} as the StackCoder server? It was found in this workspace, so the workspace decides what it does.`,
      { modal: true },
      "Run it",
    );
    if (choice !== "Run it") return false;
    await this.extension.globalState.update(key, true);
    return true;
  }

  async stop(): Promise<void> {
    clearInterval(this.poll);
    this.poll = undefined;
    for (const d of this.clientDisposables) d.dispose();
    this.clientDisposables = [];
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (error) {
        this.log(`stop: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    this.statusBar.setState("stopped");
  }

  async restart(): Promise<void> {
    this.limiter.reset();
    await this.stop();
    await this.start().catch(() => undefined);
  }

  private hooks() {
    return {
      debouncer: this.debouncer,
      completionEnabled: () => this.config.completionEnabled,
      debounceMs: () => this.config.debounceMs,
      settings: () => this.settings ?? this.config.serverSettings(),
      onAnswer: (latencyMs: number, items: number) => {
        this.stats.recordAnswer(latencyMs, items);
        this.refreshSession();
      },
      executeCommand: (command: string, args: unknown[], next: ExecuteCommandSignature) =>
        this.executeCommand(command, args, next),
      onCrash: () => this.onCrash(),
    };
  }

  /** Code actions' explain goes to the chat panel (streamed); accepted suggestions are recorded. */
  private async executeCommand(command: string, args: unknown[], next: ExecuteCommandSignature): Promise<unknown> {
    const client = this.client;
    if (command === ServerCommands.explain && client && args.length >= 2) {
      const uri = client.protocol2CodeConverter.asUri(args[0] as string);
      const range = client.protocol2CodeConverter.asRange(args[1] as Parameters<typeof client.protocol2CodeConverter.asRange>[0]);
      if (range) await this.chat.explain(uri, range);
      return undefined;
    }
    if (command === ServerCommands.didAcceptCompletion) void this.onAccepted(args[0] as AcceptedCompletion);
    if (command === ServerCommands.markMine) {
      const result = (await next(command, args)) as MarkMineResult | undefined;
      if (result?.entry) this.onMarkedMine(result);
      return result;
    }
    return next(command, args);
  }

  /** After the "this is my code" quick fix: the view forgets those findings; the list can be opened. */
  private onMarkedMine(result: MarkMineResult): void {
    this.provenance.forgetMine(result.entry);
    const what = { finding: "This finding", path: `Every match of ${result.entry.repo}/${result.entry.path}`, repository: `Repository ${result.entry.repo}` }[result.scope];
    this.log(`marked as your own code (${result.scope}): ${JSON.stringify(result.entry)} in ${result.file}`);
    void vscode.window
      .showInformationMessage(`stackcoder: ${what} is marked as your own code and will not be reported again.`, "Open List")
      .then((choice) => choice && vscode.window.showTextDocument(vscode.Uri.file(result.file)));
  }

  /** When the server does not list `stackcoder.didAcceptCompletion`, the client records acceptance itself. */
  private registerAcceptCommand(client: LanguageClient): void {
    const advertised = client.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
    if (advertised.includes(ServerCommands.didAcceptCompletion)) return;
    this.clientDisposables.push(
      vscode.commands.registerCommand(ServerCommands.didAcceptCompletion, (accepted: AcceptedCompletion) => this.onAccepted(accepted)),
    );
  }

  private async onAccepted(accepted: AcceptedCompletion | undefined): Promise<void> {
    this.stats.recordAccepted();
    this.refreshSession();
    const client = this.client;
    if (!accepted || typeof accepted.text !== "string" || !client || !this.config.provenanceEnabled) return;
    if (accepted.text.trim().length < 20) return;
    try {
      const report = parseReport(await client.sendRequest(AttributionRequest, { text: accepted.text, uri: accepted.uri }));
      if (report.verdict === "original") return;
      const start = accepted.range.start;
      const end = endOfInsertion(start, accepted.text);
      const range = new vscode.Range(start.line, start.character, end.line, end.character);
      this.provenance.addReport(vscode.Uri.parse(accepted.uri), range, report, "accepted");
    } catch (error) {
      this.log(`attribution of accepted suggestion ${accepted.id}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private onCrash(): boolean {
    const decision = this.limiter.onCrash();
    clearInterval(this.poll);
    if (decision.restart) {
      this.log(`server stopped unexpectedly; restart ${decision.attempt} of ${decision.max}`);
      this.statusBar.setState("starting", `restarting after a crash (${decision.attempt}/${decision.max})`);
      void vscode.window.showWarningMessage(
        `The stackcoder server stopped unexpectedly; restarting it (${decision.attempt} of ${decision.max}).`,
      );
      setTimeout(() => this.startPolling(), 2000);
      return true;
    }
    const minutes = Math.round(this.limiter.windowMs / 60_000);
    this.statusBar.setState("failed", "crashed repeatedly");
    this.log(`server crashed ${decision.attempt} times in ${minutes} minutes; not restarting`);
    void vscode.window
      .showErrorMessage(
        `The stackcoder server crashed ${decision.attempt} times in ${minutes} minutes and was not restarted; read the 'stackcoder' output, then run 'stackcoder: Restart Server'.`,
        "Show Output",
        "Restart Server",
      )
      .then((choice) => {
        if (choice === "Show Output") this.outputChannel.show();
        if (choice === "Restart Server") void this.restart();
      });
    return false;
  }

  private startPolling(): void {
    clearInterval(this.poll);
    const tick = async () => {
      const client = this.client;
      if (!client || client.state !== State.Running) return;
      try {
        const status = await client.sendRequest(StatusRequest, {});
        this.statusBar.setServerStatus(status);
        this.sessionView.update(null, status);
      } catch (error) {
        this.log(`status: ${error instanceof Error ? error.message : String(error)}`);
      }
    };
    void tick();
    this.poll = setInterval(tick, STATUS_POLL_MS);
  }

  private refreshSession(): void {
    const snapshot = this.stats.snapshot();
    this.statusBar.setSession(snapshot);
    this.sessionView.update(snapshot, null);
  }

  private async onConfigurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!event.affectsConfiguration("stackcoder")) return;
    this.statusBar.setEnabled(this.config.completionEnabled);
    if (Config.needsRestart(event)) {
      await this.restart();
      return;
    }
    try {
      this.settings = this.config.serverSettings();
    } catch (error) {
      void vscode.window.showErrorMessage(error instanceof Error ? error.message : String(error));
      return;
    }
    if (this.isRunning) {
      await this.client!.sendNotification("workspace/didChangeConfiguration", { settings: { stackcoder: this.settings } });
    }
  }

  dispose(): void {
    clearInterval(this.poll);
    for (const d of this.clientDisposables) d.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
