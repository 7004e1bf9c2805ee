/**
 * Debounce of inline completion requests: a request waits `ms` after the last keystroke and is
 * dropped when a newer request arrives or VS Code cancels it. Pure: timers only.
 */

export interface CancellationLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested?(listener: () => void): { dispose(): void };
}

export class Debouncer {
  private generation = 0;

  /**
   * Waits `ms` milliseconds. Resolves true when this is still the newest call and `token` was not
   * cancelled, false otherwise (the caller then returns no suggestion).
   */
  wait(ms: number, token?: CancellationLike): Promise<boolean> {
    const mine = ++this.generation;
    if (token?.isCancellationRequested) return Promise.resolve(false);
    if (ms <= 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let subscription: { dispose(): void } | undefined;
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        subscription?.dispose();
        resolve(ok);
      };
      const timer = setTimeout(() => {
        finish(mine === this.generation && !token?.isCancellationRequested);
      }, ms);
      subscription = token?.onCancellationRequested?.(() => finish(false));
    });
  }

  /** Makes every pending wait resolve false when its timer fires. */
  reset(): void {
    this.generation++;
  }
}
