/** Typed access to the `stackcoder.*` settings: one getter per setting the extension itself uses. */
import * as vscode from "vscode";
import { readServerSettings, type ServerSettings, type SettingReader, userLevelReader } from "./settings";

export const SECTION = "stackcoder";

export class Config {
  private get section(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration(SECTION);
  }

  /** Reads a key; executable and endpoint keys only from the user's settings, never the workspace's. */
  private get read(): SettingReader {
    const section = this.section;
    return userLevelReader(
      (key) => section.inspect(key),
      (key) => section.get(key),
    );
  }

  /** Settings sent to the server; throws SettingError naming the key to fix. */
  serverSettings(): ServerSettings {
    return readServerSettings(this.read);
  }

  get serverPath(): string | null {
    const value = this.read("server.path");
    return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
  }

  get serverExtraArgs(): string[] {
    const value = this.read("server.extraArgs");
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  }

  get completionEnabled(): boolean {
    return this.section.get<boolean>("completion.enabled", true);
  }

  get warmOnCursorMove(): boolean {
    return this.section.get<boolean>("completion.warmOnCursorMove", true);
  }

  get debounceMs(): number {
    const value = this.section.get<number>("completion.debounceMs", 150);
    return Number.isFinite(value) ? Math.min(Math.max(value, 0), 2000) : 150;
  }

  get provenanceEnabled(): boolean {
    return this.section.get<boolean>("provenance.enabled", true);
  }

  /** Turns ghost text on or off in the user settings (the status bar toggle). */
  async setCompletionEnabled(enabled: boolean): Promise<void> {
    await this.section.update("completion.enabled", enabled, vscode.ConfigurationTarget.Global);
  }

  /** True when a change touches a setting that needs a server restart (where the server is). */
  static needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
    return event.affectsConfiguration(`${SECTION}.server`);
  }
}
