/** Chat history kept per workspace: bounded, and turned into the server's message list. Pure. */
import type { ChatMessage } from "../protocol";
import { type HistoryEntry, sanitizeMarks } from "./messages";

/** Most entries kept in workspace state. */
export const MAX_ENTRIES = 200;

export function appendEntry(entries: readonly HistoryEntry[], entry: HistoryEntry, max = MAX_ENTRIES): HistoryEntry[] {
  const next = [...entries, entry];
  return next.length > max ? next.slice(next.length - max) : next;
}

/**
 * The conversation sent to the server: the last `maxTurns` entries with content, starting with a
 * user message (the server's prompt builder fits them into the context window).
 */
export function toServerMessages(entries: readonly HistoryEntry[], maxTurns = 12): ChatMessage[] {
  const usable = entries.filter((e) => e.content.trim() !== "");
  let recent = usable.slice(-maxTurns);
  while (recent.length > 0 && recent[0].role !== "user") recent = recent.slice(1);
  return recent.map((e) => ({ role: e.role, content: e.content }));
}

/** Reads history from storage, dropping anything malformed. */
export function sanitizeHistory(value: unknown): HistoryEntry[] {
  if (!Array.isArray(value)) return [];
  return value
    .filter(
      (e): e is HistoryEntry =>
        typeof e === "object" &&
        e !== null &&
        (e.role === "user" || e.role === "assistant") &&
        typeof e.content === "string",
    )
    .map((e) => {
      if (e.marks === undefined) return e;
      const { marks, ...rest } = e;
      const kept = sanitizeMarks(marks);
      return kept ? { ...rest, marks: kept } : rest;
    });
}

export const NO_ANSWER_NOTE = "the model returned no answer; rephrase the question or use a larger model";

/** The note under a finished answer: stopped by the user, ended early by the server (its `note`), or empty. */
export function answerNote(result: unknown, text: string, stopped: boolean): string | undefined {
  if (stopped) return "stopped";
  const note = (result as { note?: unknown } | null)?.note;
  if (typeof note === "string" && note.trim()) return note;
  return text.trim() ? undefined : NO_ANSWER_NOTE;
}

/**
 * The text kept for a finished answer: the server's final text, except that a stopped answer
 * keeps whatever had streamed when the server's reply to the cancelled request holds less.
 */
export function finalAnswerText(result: unknown, streamed: string, stopped: boolean): string {
  const text = typeof (result as { text?: unknown } | null)?.text === "string" ? (result as { text: string }).text : null;
  if (text === null) return streamed;
  return stopped && text.length < streamed.length ? streamed : text;
}
