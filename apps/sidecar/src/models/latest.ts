/**
 * A stream of updates where only the newest waiting one matters (download progress): a slow reader
 * gets the latest state, never a backlog, so the buffer is one item whatever the producer's rate.
 * `finish` queues the last item (the result), which is never dropped.
 */
export class Latest<T> implements AsyncIterable<T> {
  private pending: T | undefined;
  private final: { item: T } | undefined;
  private ended = false;
  private wake: (() => void) | undefined;

  push(item: T): void {
    if (this.ended) return;
    this.pending = item;
    this.wake?.();
  }

  finish(item: T): void {
    if (this.ended) return;
    this.final = { item };
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.pending !== undefined) {
        const item = this.pending;
        this.pending = undefined;
        yield item;
        continue;
      }
      if (this.ended) {
        if (this.final !== undefined) yield this.final.item;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
