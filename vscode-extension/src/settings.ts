/**
 * The settings the server receives (`initializationOptions.stackcoder` and
 * `workspace/didChangeConfiguration`), built from flat VS Code keys and validated.
 * Pure: no `vscode` import, so it is unit-tested directly.
 */

/** The inference backends, as `lsp_server/settings.py` and package.json list them (a test checks they agree). */
export const BACKENDS = ["auto", "torch", "ct2", "transformers", "llamacpp", "http"] as const;
export const POLICIES = ["mark", "suppress", "suppressIncompatible"] as const;
export type Backend = (typeof BACKENDS)[number];
export type ProvenancePolicy = (typeof POLICIES)[number];

export interface ServerSettings {
  model: { path: string | null; backend: Backend; threads: number; url: string | null; chatPath: string | null };
  completion: {
    enabled: boolean;
    maxNewTokens: number;
    temperature: number;
    maxPromptTokens: number;
    crossFileContext: boolean;
    debounceMs: number;
    prefetch: boolean;
    warmOnCursorMove: boolean;
    contextMaxFiles: number;
    contextMaxMegabytes: number;
  };
  provenance: { enabled: boolean; indexPath: string | null; policy: ProvenancePolicy; mine: string[] | null };
  chat: { maxNewTokens: number; temperature: number };
}

export const DEFAULT_SETTINGS: ServerSettings = {
  model: { path: null, backend: "auto", threads: 0, url: null, chatPath: null },
  completion: {
    enabled: true,
    maxNewTokens: 64,
    temperature: 0,
    maxPromptTokens: 1536,
    crossFileContext: true,
    debounceMs: 150,
    prefetch: true,
    warmOnCursorMove: true,
    contextMaxFiles: 5000,
    contextMaxMegabytes: 50,
  },
  provenance: { enabled: true, indexPath: null, policy: "mark", mine: null },
  chat: { maxNewTokens: 512, temperature: 0.2 },
};

/** Reads one flat key below `stackcoder.` (e.g. `model.path`); undefined when unset. */
export type SettingReader = (key: string) => unknown;

/** A setting that cannot be used, with the key to fix. */
export class SettingError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`stackcoder.${key}: ${message}`);
  }
}

function optionalPath(read: SettingReader, key: string): string | null {
  const value = read(key);
  if (value === undefined || value === null) return null;
  if (typeof value !== "string") throw new SettingError(key, "must be a path (a string) or empty.");
  const trimmed = value.trim();
  return trimmed === "" ? null : trimmed;
}

function oneOf<T extends string>(read: SettingReader, key: string, known: readonly T[], fallback: T): T {
  const value = read(key);
  if (value === undefined || value === null) return fallback;
  if (typeof value === "string" && (known as readonly string[]).includes(value)) return value as T;
  throw new SettingError(key, `unknown value ${JSON.stringify(value)}; use one of ${known.join(", ")}.`);
}

function numberIn(read: SettingReader, key: string, min: number, max: number, fallback: number, integer: boolean): number {
  const value = read(key);
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new SettingError(key, `must be ${integer ? "an integer" : "a number"} between ${min} and ${max}.`);
  }
  if (value < min || value > max) throw new SettingError(key, `must be between ${min} and ${max}, not ${value}.`);
  return value;
}

function bool(read: SettingReader, key: string, fallback: boolean): boolean {
  const value = read(key);
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "boolean") throw new SettingError(key, "must be true or false.");
  return value;
}

function stringList(read: SettingReader, key: string): string[] | null {
  const value = read(key);
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v.trim() !== "")) {
    throw new SettingError(key, 'must be a list of "owner/name" or "owner/name:path-glob" strings.');
  }
  return value.map((v: string) => v.trim());
}

/** Builds the validated settings object; throws SettingError naming the key to fix. */
export function readServerSettings(read: SettingReader): ServerSettings {
  const d = DEFAULT_SETTINGS;
  const settings: ServerSettings = {
    model: {
      path: optionalPath(read, "model.path"),
      backend: oneOf(read, "model.backend", BACKENDS, d.model.backend),
      threads: numberIn(read, "model.threads", 0, 1024, d.model.threads, true),
      url: optionalPath(read, "model.url"),
      chatPath: optionalPath(read, "model.chatPath"),
    },
    completion: {
      enabled: bool(read, "completion.enabled", d.completion.enabled),
      maxNewTokens: numberIn(read, "completion.maxNewTokens", 1, 1024, d.completion.maxNewTokens, true),
      temperature: numberIn(read, "completion.temperature", 0, 2, d.completion.temperature, false),
      maxPromptTokens: numberIn(read, "completion.maxPromptTokens", 64, 1 << 20, d.completion.maxPromptTokens, true),
      crossFileContext: bool(read, "completion.crossFileContext", d.completion.crossFileContext),
      debounceMs: numberIn(read, "completion.debounceMs", 0, 2000, d.completion.debounceMs, true),
      prefetch: bool(read, "completion.prefetch", d.completion.prefetch),
      warmOnCursorMove: bool(read, "completion.warmOnCursorMove", d.completion.warmOnCursorMove),
      contextMaxFiles: numberIn(read, "completion.contextMaxFiles", 1, 1_000_000, d.completion.contextMaxFiles, true),
      contextMaxMegabytes: numberIn(read, "completion.contextMaxMegabytes", 1, 10_000, d.completion.contextMaxMegabytes, true),
    },
    provenance: {
      enabled: bool(read, "provenance.enabled", d.provenance.enabled),
      indexPath: optionalPath(read, "provenance.indexPath"),
      policy: oneOf(read, "provenance.policy", POLICIES, d.provenance.policy),
      mine: stringList(read, "provenance.mine"),
    },
    chat: {
      maxNewTokens: numberIn(read, "chat.maxNewTokens", 1, 4096, d.chat.maxNewTokens, true),
      temperature: numberIn(read, "chat.temperature", 0, 2, d.chat.temperature, false),
    },
  };
  if (settings.model.backend === "http" && settings.model.url === null && settings.model.path === null) {
    throw new SettingError("model.url", "the http backend needs the base URL of a local completions server.");
  }
  return settings;
}

/** Every flat key `readServerSettings` reads, for change detection. */
export const SERVER_SETTING_KEYS: readonly string[] = Object.entries(DEFAULT_SETTINGS).flatMap(([group, values]) =>
  Object.keys(values).map((key) => `${group}.${key}`),
);

/**
 * Settings that choose what runs or where text is sent: scoped `machine` in package.json and read
 * from the user's settings only, so that a workspace's `.vscode/settings.json` never sets them.
 */
export const MACHINE_KEYS: readonly string[] = ["server.path", "server.extraArgs", "model.path", "model.backend", "model.url", "model.chatPath"];

/** What `WorkspaceConfiguration.inspect` reports for one key (the levels used here). */
export interface SettingLevels {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/** A reader that takes machine keys from the user (global) level only and the rest as VS Code resolves them. */
export function userLevelReader(inspect: (key: string) => SettingLevels | undefined, get: SettingReader): SettingReader {
  return (key) => {
    if (!MACHINE_KEYS.includes(key)) return get(key);
    const levels = inspect(key);
    return levels?.globalValue ?? levels?.defaultValue;
  };
}
