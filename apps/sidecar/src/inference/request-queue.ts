import { EngineError } from "./engine.js";

/**
 * A bounded FIFO that lets `concurrency` jobs run at once and at most `waitingMax` wait. A full
 * queue refuses at once (the caller answers 503 saying so) rather than growing without bound.
 */
export class RequestQueue {
  private running = 0;
  private readonly waiting: Array<{ start: () => void; abort: () => void }> = [];

  constructor(
    private readonly name: string,
    private readonly options: { concurrency: number; waitingMax: number },
  ) {}

  get depth(): number {
    return this.waiting.length;
  }

  /** Waits for a slot; the returned function releases it and must be called exactly once. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.running < this.options.concurrency) {
      this.running++;
      return this.releaser();
    }
    if (this.waiting.length >= this.options.waitingMax) {
      throw new EngineError(
        503,
        "queue_full",
        `model ${this.name} is busy: its request queue is full (${this.options.waitingMax} waiting); retry shortly`,
      );
    }
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const entry = {
        start: () => {
          signal?.removeEventListener("abort", entry.abort);
          this.running++;
          resolve(this.releaser());
        },
        abort: () => {
          const index = this.waiting.indexOf(entry);
          if (index >= 0) this.waiting.splice(index, 1);
          reject(signal?.reason instanceof Error ? signal.reason : new Error("request aborted while queued"));
        },
      };
      signal?.addEventListener("abort", entry.abort, { once: true });
      this.waiting.push(entry);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.waiting.shift()?.start();
    };
  }
}
