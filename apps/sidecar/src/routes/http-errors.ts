import { PotluckHttpError } from "@potluck/protocol";
import { EngineError } from "../inference/engine.js";
import { PeerCallError } from "@potluck/peer";

/** The engine's errors that are about the model the request named (its `model` field). */
const aboutTheModel = new Set<EngineError["code"]>(["model_not_found", "not_a_chat_model", "model_too_large"]);

/**
 * Engine and peer failures as HTTP errors that keep their specific code (queue_full, …) and status:
 * 507 model_too_large (it needs more memory than is free, by node-llama-cpp's estimate: not a
 * transient 503 a client should just retry), 400 not_a_chat_model, 503 no_room.
 */
export function asHttpError(error: unknown): unknown {
  if (error instanceof EngineError)
    return new PotluckHttpError(
      error.status,
      error.code,
      error.message,
      aboutTheModel.has(error.code) ? "model" : error.code === "context_length_exceeded" ? "messages" : undefined,
      { cause: error },
    );
  if (error instanceof PeerCallError) {
    const status = error.status === 503 ? 503 : 502;
    return new PotluckHttpError(status, "peer_failed", `${error.layer}: ${error.message}`, undefined, { cause: error });
  }
  return error;
}
