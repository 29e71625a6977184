import { PotluckHttpError, type InferStreamChunk } from "@potluck/protocol";

/**
 * Engine errors that are about the request, not the machine that met them (the engine's 400s):
 * another machine would refuse it alike, and the client must see its own 400, not a routing 502.
 */
const requestErrors = new Set(["context_length_exceeded", "invalid_request"]);

export function isRequestError(code: string): boolean {
  return requestErrors.has(code);
}

/**
 * An error chunk as the HTTP error of an answer whose status is not sent yet: 400 naming the
 * field for the request's own fault, else 502 (the machine that served failed). `text` is how
 * the API words it (Ollama prefixes the layer).
 */
export function chunkHttpError(chunk: Extract<InferStreamChunk, { type: "error" }>, text = chunk.message) {
  if (!isRequestError(chunk.code)) return new PotluckHttpError(502, chunk.code, text);
  return new PotluckHttpError(
    400,
    chunk.code,
    chunk.message,
    chunk.code === "context_length_exceeded" ? "messages" : undefined,
  );
}
