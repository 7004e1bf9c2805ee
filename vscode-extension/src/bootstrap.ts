/**
 * Finding the server: the `stackcoder.server.path` setting, then `$STACKCODER_SERVER`, then the
 * project's `.venv/bin/stackcoder` above the extension, then one in or above a workspace folder
 * (source "workspace venv": code the workspace brought, run only after the user allows it), then
 * `stackcoder` on PATH. No `vscode` import: unit-tested with a fake file system.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export type ServerSource = "setting" | "environment" | "project venv" | "workspace venv" | "PATH";

export interface ServerCommand {
  command: string;
  args: string[];
  source: ServerSource;
}

export interface BootstrapInput {
  settingPath: string | null;
  extraArgs: readonly string[];
  env: Record<string, string | undefined>;
  /** Folders to search upwards from for `.venv/bin/stackcoder` that the user installed (the extension's). */
  searchRoots: readonly string[];
  /** Workspace folders to search upwards from; a server found there needs the user's consent. */
  workspaceRoots?: readonly string[];
  isExecutable?: (file: string) => boolean;
  platform?: NodeJS.Platform;
}

/** The server cannot be found; the message says where it looked and what to do. */
export class ServerNotFoundError extends Error {}

/** Runs a Python interpreter's installed `stackcoder` entry point. */
const PYTHON_ENTRY = "import sys; from stackcoder_cli.main import main; sys.exit(main())";

export function defaultIsExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function venvScript(platform: NodeJS.Platform): string {
  return platform === "win32" ? path.join(".venv", "Scripts", "stackcoder.exe") : path.join(".venv", "bin", "stackcoder");
}

/** Looks for `.venv/bin/stackcoder` in `start` and each of its parents. */
export function findProjectVenv(start: string, isExecutable: (f: string) => boolean, platform: NodeJS.Platform): string | null {
  let dir = path.resolve(start);
  for (;;) {
    const candidate = path.join(dir, venvScript(platform));
    if (isExecutable(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function onPath(name: string, env: Record<string, string | undefined>, isExecutable: (f: string) => boolean, platform: NodeJS.Platform): string | null {
  const sep = platform === "win32" ? ";" : ":";
  for (const dir of (env.PATH ?? "").split(sep)) {
    if (!dir) continue;
    const candidate = path.join(dir, platform === "win32" ? `${name}.exe` : name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/** Command line for an executable that is either `stackcoder` or a Python interpreter. */
function commandFor(executable: string, extraArgs: readonly string[], source: ServerSource): ServerCommand {
  const base = path.basename(executable).toLowerCase();
  const serve = ["serve", ...extraArgs];
  if (/^python(\d+(\.\d+)?)?(\.exe)?$/.test(base)) {
    return { command: executable, args: ["-c", PYTHON_ENTRY, ...serve], source };
  }
  return { command: executable, args: serve, source };
}

/** Resolves the server command line, or throws ServerNotFoundError. */
export function resolveServer(input: BootstrapInput): ServerCommand {
  const isExecutable = input.isExecutable ?? defaultIsExecutable;
  const platform = input.platform ?? process.platform;
  if (input.settingPath) {
    if (!isExecutable(input.settingPath)) {
      throw new ServerNotFoundError(
        `stackcoder.server.path points to ${input.settingPath}, which is not an executable file; fix the setting or clear it to use the project's .venv.`,
      );
    }
    return commandFor(input.settingPath, input.extraArgs, "setting");
  }
  const fromEnv = input.env.STACKCODER_SERVER;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new ServerNotFoundError(`$STACKCODER_SERVER points to ${fromEnv}, which is not an executable file; fix or unset it.`);
    }
    return commandFor(fromEnv, input.extraArgs, "environment");
  }
  for (const root of input.searchRoots) {
    const found = findProjectVenv(root, isExecutable, platform);
    if (found) return commandFor(found, input.extraArgs, "project venv");
  }
  for (const root of input.workspaceRoots ?? []) {
    const found = findProjectVenv(root, isExecutable, platform);
    if (found) return commandFor(found, input.extraArgs, "workspace venv");
  }
  const global = onPath("stackcoder", input.env, isExecutable, platform);
  if (global) return commandFor(global, input.extraArgs, "PATH");
  throw new ServerNotFoundError(
    "The stackcoder server was not found (no stackcoder.server.path, $STACKCODER_SERVER, .venv/bin/stackcoder above the workspace, or stackcoder on PATH); run `make install` in the stackcoder repository or set stackcoder.server.path.",
  );
}

/** Whether running this command needs the user's consent first (the workspace brought it). */
export function needsConsent(server: ServerCommand): boolean {
  return server.source === "workspace venv";
}
