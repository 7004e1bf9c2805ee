/** Wording and arithmetic for provenance findings. Pure: unit-tested without VS Code. */
import type { AttributionMatch, AttributionReport, MineEntry } from "./protocol";

export function sourceLines(match: AttributionMatch): string {
  return match.source_start_line === match.source_end_line
    ? `line ${match.source_start_line}`
    : `lines ${match.source_start_line}–${match.source_end_line}`;
}

/** One line naming where code came from, e.g. `cpython: Lib/json/decoder.py lines 3–9 (PSF-2.0)`. */
export function describeMatch(match: AttributionMatch): string {
  return `${match.repo}: ${match.path} ${sourceLines(match)} (${match.license || "unknown license"})`;
}

/** Short summary of a report for a message or a code lens. */
export function summarizeReport(report: AttributionReport): string {
  if (report.verdict === "original" || report.matches.length === 0) return "No match in the indexed corpus.";
  const best = [...report.matches].sort((a, b) => b.score - a.score)[0];
  const more = report.matches.length > 1 ? ` and ${report.matches.length - 1} more` : "";
  const verb = report.verdict === "copied" ? "Copied from" : "Similar to";
  return `${verb} ${describeMatch(best)}${more}.`;
}

/** Validates a report received from the server; throws with what is wrong. */
export function parseReport(value: unknown): AttributionReport {
  const report = value as AttributionReport;
  if (!report || typeof report !== "object" || !["copied", "similar", "original"].includes(report.verdict)) {
    throw new Error("The server sent a malformed attribution report; update the stackcoder server.");
  }
  if (!Array.isArray(report.matches)) throw new Error("The attribution report has no matches list.");
  return report;
}

export interface Pos {
  line: number;
  character: number;
}

/** Position after inserting `text` at `start` (0-based lines and UTF-16 columns, like LSP). */
export function endOfInsertion(start: Pos, text: string): Pos {
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length === 1) return { line: start.line, character: start.character + lines[0].length };
  return { line: start.line + lines.length - 1, character: lines[lines.length - 1].length };
}

/** Extracts the first fenced code block of a markdown text (the source shown by the server's hover). */
export function firstCodeBlock(markdown: string): string | null {
  const match = /^(```|~~~)[^\n]*\n([\s\S]*?)^\1\s*$/m.exec(markdown);
  return match ? match[2].replace(/\n$/, "") : null;
}

/** An insertion counts as a paste worth checking from this many characters and lines on. */
export const MIN_PASTE_CHARS = 80;
export const MIN_PASTE_LINES = 2;

/** True for an inserted text large enough to be checked against the corpus. */
export function looksLikePaste(text: string): boolean {
  return text.length >= MIN_PASTE_CHARS && text.split("\n").length >= MIN_PASTE_LINES;
}

/** The license fit of a match in the workspace, e.g. "GPL-3.0 source in an MIT project: incompatible". */
export function fitText(match: AttributionMatch): string | null {
  return match.license_fit?.text ?? null;
}

/** One line for a chat code block that matches the corpus (shown above the block, before Insert). */
export function blockMarkText(report: AttributionReport): string | null {
  if (report.verdict === "original" || report.matches.length === 0) return null;
  const best = [...report.matches].sort((a, b) => b.score - a.score)[0];
  const verb = report.verdict === "copied" ? "Copied from" : "Similar to";
  const fit = fitText(best);
  return `${verb} ${describeMatch(best)}${fit ? ` — ${fit}` : ""}`;
}

/** The worst license-fit verdict among a report's matches ("incompatible" before "unknown"). */
export function worstFit(report: AttributionReport): "compatible" | "incompatible" | "unknown" | null {
  const verdicts = report.matches.map((m) => m.license_fit?.verdict).filter((v) => v !== undefined);
  if (verdicts.includes("incompatible")) return "incompatible";
  if (verdicts.includes("unknown")) return "unknown";
  return verdicts.length ? "compatible" : null;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

function sameRepo(a: string, b: string): boolean {
  const x = a.trim().toLowerCase().replace(/\.git$/, "");
  const y = b.trim().toLowerCase().replace(/\.git$/, "");
  if (!x || !y) return false;
  if (x.includes("/") && y.includes("/")) return x === y;
  return x.split("/").pop() === y.split("/").pop();
}

/** Whether an entry of `.stackcoder/mine.json` covers a match (as `attribution/ownership.py` decides). */
export function entryCovers(entry: MineEntry, match: AttributionMatch): boolean {
  if (!sameRepo(entry.repo, match.repo)) return false;
  if (entry.path !== undefined && entry.path !== match.path && !globToRegExp(entry.path).test(match.path)) return false;
  if (entry.lines) return match.source_start_line <= entry.lines[1] && entry.lines[0] <= match.source_end_line;
  return true;
}
