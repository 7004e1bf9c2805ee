/**
 * Messages between the chat webview and the extension (the webview talks only through these).
 * Pure: shared by the extension bundle and the webview bundle, and unit-tested.
 */

export type Attach = "selection" | "file" | "none";

export interface HistoryEntry {
  role: "user" | "assistant";
  content: string;
  /** Label of the attached context shown under a user message, e.g. "selection of app.py". */
  context?: string;
  /** Set when an answer was stopped or failed. */
  note?: string;
  /** Provenance of the answer's code blocks that match the indexed corpus. */
  marks?: CodeMark[];
}

/** A code block of an answer that matches the corpus: shown above the block, before Insert. */
export interface CodeMark {
  /** Index of the block in the answer (as the renderer numbers them). */
  index: number;
  verdict: "copied" | "similar";
  /** E.g. "Copied from cpython: Lib/heapq.py lines 3–9 (PSF-2.0) — PSF-2.0 source in ...". */
  text: string;
  /** The worst license fit among its matches, when known. */
  fit?: "compatible" | "incompatible" | "unknown";
}

/** Keeps the well-formed marks of a stored entry. */
export function sanitizeMarks(value: unknown): CodeMark[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const marks = value.filter(
    (m): m is CodeMark =>
      typeof m === "object" &&
      m !== null &&
      Number.isInteger(m.index) &&
      (m.verdict === "copied" || m.verdict === "similar") &&
      typeof m.text === "string",
  );
  return marks.length ? marks : undefined;
}

/** Webview → extension. */
export type FromWebview =
  | { type: "ready" }
  | { type: "ask"; text: string; attach: Attach }
  /** The user began writing a question (or changed what it attaches): warm its prompt up. */
  | { type: "compose"; attach: Attach }
  | { type: "stop" }
  | { type: "insert"; code: string }
  | { type: "copy"; code: string }
  | { type: "clear" };

/** Extension → webview. */
export type ToWebview =
  | { type: "history"; entries: HistoryEntry[]; busy: boolean }
  | { type: "start"; user: HistoryEntry }
  | { type: "delta"; text: string }
  | { type: "end"; entry: HistoryEntry }
  | { type: "marks"; marks: CodeMark[] }
  | { type: "error"; message: string };

const ATTACH: readonly Attach[] = ["selection", "file", "none"];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Validates a message posted by the webview; returns null for anything malformed. */
export function parseFromWebview(value: unknown): FromWebview | null {
  if (!isObject(value) || typeof value.type !== "string") return null;
  switch (value.type) {
    case "ready":
    case "stop":
    case "clear":
      return { type: value.type };
    case "ask":
      if (typeof value.text !== "string" || value.text.trim() === "") return null;
      if (typeof value.attach !== "string" || !(ATTACH as readonly string[]).includes(value.attach)) return null;
      return { type: "ask", text: value.text, attach: value.attach as Attach };
    case "compose":
      if (typeof value.attach !== "string" || !(ATTACH as readonly string[]).includes(value.attach)) return null;
      return { type: "compose", attach: value.attach as Attach };
    case "insert":
    case "copy":
      if (typeof value.code !== "string") return null;
      return { type: value.type, code: value.code };
    default:
      return null;
  }
}
