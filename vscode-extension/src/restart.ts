/**
 * How often a crashed server is restarted: at most `maxRestarts` within `windowMs`, after which
 * the user is told and restarts by hand. Pure, with an injectable clock.
 */

export interface RestartDecision {
  restart: boolean;
  /** 1-based number of this restart within the window. */
  attempt: number;
  max: number;
}

export class RestartLimiter {
  private crashes: number[] = [];

  constructor(
    readonly maxRestarts = 3,
    readonly windowMs = 3 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a crash and says whether to restart. */
  onCrash(): RestartDecision {
    const t = this.now();
    this.crashes = this.crashes.filter((c) => t - c < this.windowMs);
    this.crashes.push(t);
    const attempt = this.crashes.length;
    return { restart: attempt <= this.maxRestarts, attempt, max: this.maxRestarts };
  }

  /** Forgets past crashes (after a manual restart). */
  reset(): void {
    this.crashes = [];
  }
}
