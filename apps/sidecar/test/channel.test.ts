import { describe, expect, it } from "vitest";
import { Channel } from "../src/inference/channel.js";

/** Pulls one batch; undefined once the channel is finished. */
async function pull<T>(batches: AsyncGenerator<T[]>): Promise<T[] | undefined> {
  const next = await batches.next();
  return next.done === true ? undefined : next.value;
}

describe("Channel batches", () => {
  it("hands over everything buffered at a pull when there is no window", async () => {
    const channel = new Channel<string>();
    const batches = channel.batches();
    channel.push("a");
    channel.push("b");
    expect(await pull(batches)).toEqual(["a", "b"]);
    channel.push("c");
    channel.end();
    expect(await pull(batches)).toEqual(["c"]);
    expect(await pull(batches)).toBeUndefined();
  });

  it("sends the first item at once, gathers later ones for the window, and lets the end release them", async () => {
    const channel = new Channel<string>();
    // Ten minutes: the held batch can only come out because the channel ended.
    const batches = channel.batches(600_000);
    channel.push("first");
    expect(await pull(batches)).toEqual(["first"]);
    const held = pull(batches);
    channel.push("b");
    // A turn of the event loop: without the window the pull would already have taken ["b"].
    await new Promise((resolve) => setImmediate(resolve));
    channel.push("c");
    channel.end();
    expect(await held).toEqual(["b", "c"]);
    expect(await pull(batches)).toBeUndefined();
  });

  it("rethrows the producer's failure after the items it delivered", async () => {
    const channel = new Channel<string>();
    const batches = channel.batches(600_000);
    channel.push("a");
    expect(await pull(batches)).toEqual(["a"]);
    channel.push("b");
    channel.end(new Error("runtime failed"));
    expect(await pull(batches)).toEqual(["b"]);
    await expect(pull(batches)).rejects.toThrow("runtime failed");
  });
});
