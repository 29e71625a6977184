import type { InferStreamChunk } from "@potluck/protocol";
import type { PlannedRoute } from "../routing/router.js";

/**
 * What every API front end (OpenAI, Ollama, pulls) shares about a reply: re-joining the chunk it
 * pulled before answering, and Potluck's footer, the same fields on every API.
 */

/** Re-joins a pulled first item to the rest; closing it early closes the source (frees the model). */
export async function* prepend<T>(first: IteratorResult<T>, rest: AsyncIterator<T>): AsyncGenerator<T> {
  try {
    if (first.done === true) return;
    yield first.value;
    for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value;
  } finally {
    await rest.return?.(undefined);
  }
}

/** The footer: who served it, how it was reached, and whether it was the random-weight test model. */
export function footer(chunk: Extract<InferStreamChunk, { type: "done" }>, route: PlannedRoute) {
  return {
    served_by: chunk.servedBy,
    route: route.choice.kind,
    owner: route.choice.owner,
    test_model: chunk.testModel,
    finished_at: chunk.at,
  };
}
