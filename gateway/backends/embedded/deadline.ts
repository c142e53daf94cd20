import { GatewayError } from "../../errors";

/**
 * The time budget of one operation (maxTimeMS). The engine is synchronous, so an operation that overran its
 * budget would hold the only thread, and with it every other request, until it finished: instead the engine
 * checks the deadline inside its own loops (`tick`, cheap enough for per-document use) and, through
 * `activeDeadline`, inside every mingo operator it runs (see matcher.ts), and throws ExecutionTimeout.
 */
export class Deadline {
  private ticks = 0;
  private expired = false;

  constructor(private readonly at: number) {}

  static after(ms: number): Deadline {
    return new Deadline(Date.now() + ms);
  }

  /** Per-document check: reads the clock every 256 calls. */
  tick(): void {
    if (this.expired || ((++this.ticks & 255) === 0 && Date.now() > this.at)) this.fail();
  }

  /** After work that may have been long by itself (a large array built, a whole stage sorted). */
  check(): void {
    if (this.expired || Date.now() > this.at) this.fail();
  }

  private fail(): never {
    // Sticky: code that swallows one error (mingo's $convert onError) meets it again at the next check.
    this.expired = true;
    throw new GatewayError("ExecutionTimeout", "operation exceeded time limit");
  }
}

let active: Deadline | undefined;

/** Runs synchronous engine work with `deadline` visible to the operator wrappers (`activeDeadline`). */
export function underDeadline<T>(deadline: Deadline, work: () => T): T {
  const previous = active;
  active = deadline;
  try {
    return work();
  } finally {
    active = previous;
  }
}

/** The deadline of the operation running now, if any (operators run synchronously inside one). */
export function activeDeadline(): Deadline | undefined {
  return active;
}
