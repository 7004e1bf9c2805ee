/**
 * When to ask the server to warm up the completion at the cursor: once the cursor has settled at
 * a new place without an edit (a click, arrow keys, a jump to a definition), so that the first
 * keystroke there finds its prompt already processed. Typing is left alone: each keystroke sends
 * its own completion request. Pure: timers only, so it is unit-tested directly.
 */

/** A cursor (an empty selection) in a document at a given version. */
export interface CursorSpot {
  uri: string;
  version: number;
  line: number;
  character: number;
}

function same(a: CursorSpot | undefined, b: CursorSpot): boolean {
  return a !== undefined && a.uri === b.uri && a.version === b.version && a.line === b.line && a.character === b.character;
}

export class WarmPlanner {
  private timer: NodeJS.Timeout | undefined;
  private versions = new Map<string, number>(); // document version at its last cursor event
  private sent: CursorSpot | undefined;

  constructor(
    private readonly delayMs: number,
    private readonly send: (spot: CursorSpot) => void,
  ) {}

  /** The cursor is now at `spot`; a warm-up is sent when it stays there for `delayMs`. */
  cursorMoved(spot: CursorSpot): void {
    this.cancel();
    const edited = this.versions.has(spot.uri) && this.versions.get(spot.uri) !== spot.version;
    this.versions.set(spot.uri, spot.version);
    if (edited || same(this.sent, spot)) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sent = spot;
      this.send(spot);
    }, this.delayMs);
  }

  /** Drop a pending warm-up (a selection that is not a cursor, the feature turned off). */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Forget a closed document. */
  forget(uri: string): void {
    this.versions.delete(uri);
    if (this.sent?.uri === uri) this.sent = undefined;
  }
}
