/**
 * Turns a push source (a runtime's token callback) into an async iterator. The producer is bounded
 * by the generation's own max tokens, so the buffer is bounded by that too. `batches()` hands the
 * consumer everything buffered at once, so a slow consumer (a socket) gets fewer, larger pieces
 * instead of paying its per-item cost for every token.
 */
export class Channel<T> implements AsyncIterable<T> {
  private readonly buffer: T[] = [];
  private waiter: (() => void) | undefined;
  /** Set while `batches()` holds a batch back for its window; only `end()` cuts that short. */
  private holdWaiter: (() => void) | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;

  push(item: T): void {
    if (this.ended) return;
    this.buffer.push(item);
    this.wake();
  }

  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (error !== undefined) this.failure = { error };
    this.wake();
    this.holdWaiter?.();
  }

  /**
   * Everything buffered, as one array per pull. With `windowMs` > 0 a batch goes out at most once
   * per window: the first at once, later ones gather what arrives until the window since the
   * previous batch has passed. The end of the source releases a held batch at once, so the last
   * tokens never wait for a window that can no longer gather anything.
   */
  async *batches(windowMs = 0): AsyncGenerator<T[]> {
    let lastYieldAt = -Infinity;
    for (;;) {
      if (this.buffer.length > 0) {
        const wait = lastYieldAt + windowMs - performance.now();
        // One hold per batch: Node's timers count from the loop's cached clock and often fire a
        // little early; waiting out the remainder again doubled the timers for no gain.
        if (wait > 0 && !this.ended) await this.hold(wait);
        lastYieldAt = performance.now();
        yield this.buffer.splice(0, this.buffer.length);
        continue;
      }
      if (this.ended) {
        if (this.failure !== undefined) throw this.failure.error;
        return;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      const item = this.buffer.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.ended) {
        if (this.failure !== undefined) throw this.failure.error;
        return;
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** Resolves after `ms`, or as soon as the channel ends; pushes meanwhile only add to the batch. */
  private hold(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.holdWaiter = undefined;
        resolve();
      };
      const timer = setTimeout(release, ms);
      this.holdWaiter = release;
    });
  }
}
