/**
 * Per-session statistics of ghost-text suggestions measured on the client: how many were shown
 * and accepted, and the latency the user saw (request to items, including the server's queue).
 * Pure: no `vscode` import.
 */

export interface SessionSnapshot {
  requested: number;
  shown: number;
  accepted: number;
  acceptanceRate: number | null;
  latency: { last: number | null; p50: number | null; p95: number | null; count: number };
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1];
}

export class SessionStats {
  private requested = 0;
  private shown = 0;
  private accepted = 0;
  private latencies: number[] = [];

  constructor(private readonly window = 500) {}

  /** A request reached the server and answered after `latencyMs`, with `items` suggestions. */
  recordAnswer(latencyMs: number, items: number): void {
    this.requested++;
    if (items > 0) this.shown++;
    this.latencies.push(latencyMs);
    if (this.latencies.length > this.window) this.latencies.shift();
  }

  recordAccepted(): void {
    this.accepted++;
  }

  snapshot(): SessionSnapshot {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      requested: this.requested,
      shown: this.shown,
      accepted: this.accepted,
      acceptanceRate: this.shown > 0 ? this.accepted / this.shown : null,
      latency: {
        last: this.latencies.length ? this.latencies[this.latencies.length - 1] : null,
        p50: percentile(sorted, 50),
        p95: percentile(sorted, 95),
        count: sorted.length,
      },
    };
  }
}
