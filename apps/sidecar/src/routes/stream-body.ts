/**
 * A streamed HTTP body fed by an async iterator. When the client goes away the stream is
 * cancelled, and `onCancel` stops the work (the model or the upstream peer) behind it.
 */
export function streamBody<T>(source: AsyncIterator<T>, encode: (item: T) => string | undefined, options: { onCancel: () => void; trailer?: () => string }): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let finished = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          const next = await source.next();
          if (next.done === true) {
            finished = true;
            const trailer = options.trailer?.();
            if (trailer !== undefined) controller.enqueue(encoder.encode(trailer));
            controller.close();
            return;
          }
          const text = encode(next.value);
          if (text !== undefined) {
            controller.enqueue(encoder.encode(text));
            return;
          }
        }
      } catch (error) {
        finished = true;
        controller.error(error);
      }
    },
    cancel() {
      if (!finished) options.onCancel();
    },
  });
}
