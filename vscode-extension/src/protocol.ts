/**
 * Custom protocol of the stackcoder language server, declared once on this side.
 * Mirrors lsp_server/protocol.py; keep the two in step.
 */
import type {
  InlineCompletionList,
  InlineCompletionParams,
  Position,
  Range,
  TextDocumentIdentifier,
} from "vscode-languageclient";
import { NotificationType, ProgressType, RequestType } from "vscode-languageclient";

export type Role = "user" | "assistant";

export interface ChatMessage {
  role: Role;
  content: string;
}

export interface ChatContext {
  uri?: string;
  selection?: string;
  fileText?: string;
  languageId?: string;
}

export interface ChatParams {
  messages: ChatMessage[];
  context?: ChatContext;
  partialResultToken?: string | number;
}

export interface TextResult {
  text: string;
  /** Why the server ended the answer early (it fell into a loop), when it did. */
  note?: string;
}

/** `$/progress` value streamed for chat and explain: one delta of the answer. */
export interface TextDelta {
  text: string;
}

/** `stackcoder/warmCursor` params: the cursor settled here. */
export interface WarmCursorParams {
  textDocument: TextDocumentIdentifier;
  position: Position;
}

export interface ExplainParams {
  textDocument: TextDocumentIdentifier;
  range: Range;
  partialResultToken?: string | number;
}

export interface AttributionParams {
  text: string;
  /** A document of the workspace folder the report is read for (own code left out, license fit added). */
  uri?: string;
}

export type LicenseFitVerdict = "compatible" | "incompatible" | "unknown";

/** How a match's license fits the workspace's license (`attribution/license_fit.py`). */
export interface LicenseFit {
  source: string;
  project: string;
  verdict: LicenseFitVerdict;
  notice: boolean;
  note: string;
  /** E.g. "GPL-3.0 source in an MIT project: incompatible". */
  text: string;
}

export type Verdict = "copied" | "similar" | "original";
export type MatchKind = "exact" | "near" | "bm25";

export interface AttributionMatch {
  repo: string;
  path: string;
  license: string;
  url: string | null;
  source_start_line: number;
  source_end_line: number;
  query_start_line: number;
  query_end_line: number;
  kind: MatchKind;
  score: number;
  /** Present when the report was read for a workspace folder. */
  license_fit?: LicenseFit;
}

export interface AttributionReport {
  verdict: Verdict;
  matches: AttributionMatch[];
  /** Matches left out as the user's own code (reports read for a workspace folder). */
  mine?: number;
  project_license?: string;
}

export type MineScope = "finding" | "path" | "repository";

/** An entry of `.stackcoder/mine.json`. */
export interface MineEntry {
  repo: string;
  path?: string;
  lines?: [number, number];
}

/** Result of `stackcoder.markMine`. */
export interface MarkMineResult {
  file: string;
  added: boolean;
  entry: MineEntry;
  scope: MineScope;
}

/** Argument of `stackcoder.didInsertCode`: code inserted from a chat answer. */
export interface InsertedCode {
  uri: string;
  text: string;
  range: Range;
  origin: string;
}

export interface ModelStatus {
  name: string | null;
  path: string | null;
  backend: string | null;
  loaded: boolean;
  error: string | null;
}

export interface IndexStatus {
  path: string | null;
  loaded: boolean;
  error: string | null;
}

export interface LatencyStatus {
  p50: number | null;
  p95: number | null;
  last: number | null;
  count: number;
}

/** How the server's completion requests were answered (null before a model is loaded). */
export interface EngineStatus {
  model_runs: number;
  stopped_runs: number;
  cache_hits: number;
  superseded: number;
  prefetched: number;
  warmed: number;
}

export interface ServerStatus {
  model: ModelStatus;
  index: IndexStatus;
  latency_ms: LatencyStatus;
  engine: EngineStatus | null;
  completions: { shown: number; accepted: number };
  version: string;
}

/** Argument of the `stackcoder.didAcceptCompletion` command carried by every inline completion item. */
export interface AcceptedCompletion {
  id: string;
  uri: string;
  text: string;
  range: Range;
}

/** `data` of a provenance diagnostic. */
export interface ProvenanceDiagnosticData {
  match: AttributionMatch;
}

export const ChatRequest = new RequestType<ChatParams, TextResult, void>("stackcoder/chat");
export const ExplainRequest = new RequestType<ExplainParams, TextResult, void>("stackcoder/explain");
export const AttributionRequest = new RequestType<AttributionParams, AttributionReport, void>(
  "stackcoder/attribution",
);
export const StatusRequest = new RequestType<Record<string, never>, ServerStatus, void>("stackcoder/status");
export const TextDeltaProgress = new ProgressType<TextDelta>();
/**
 * `textDocument/inlineCompletion` answered from the server's completion cache alone (never the
 * model): asked at once on each keystroke, so cached suggestions skip the debounce.
 */
export const CachedCompletionRequest = new RequestType<InlineCompletionParams, InlineCompletionList | null, void>(
  "stackcoder/cachedCompletion",
);
/** Notification: compute the completion at a cursor that settled at a new place. */
export const WarmCursorNotification = new NotificationType<WarmCursorParams>("stackcoder/warmCursor");
/** The user is writing a chat question about this context: the server processes its prompt's head. */
export const WarmChatNotification = new NotificationType<ChatParams>("stackcoder/warmChat");

/** Server-side commands run through `workspace/executeCommand` with arguments `[uri, range]`. */
export const ServerCommands = {
  infill: "stackcoder.infill",
  explain: "stackcoder.explain",
  checkProvenance: "stackcoder.checkProvenance",
  didAcceptCompletion: "stackcoder.didAcceptCompletion",
  /** Quick fix on a provenance diagnostic, arguments `[uri, scope, match]`. */
  markMine: "stackcoder.markMine",
  /** `[InsertedCode]`: checked, published as findings, logged when copied. */
  didInsertCode: "stackcoder.didInsertCode",
} as const;

/** Files the server keeps in a workspace folder, relative to it. */
export const WorkspaceFiles = {
  mine: ".stackcoder/mine.json",
  referenceLog: ".stackcoder/references.log",
} as const;

/** Source of the diagnostics the server publishes for provenance findings. */
export const DIAGNOSTIC_SOURCE = "stackcoder";

export type { Position, Range };
