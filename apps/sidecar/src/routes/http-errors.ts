import { PotluckHttpError } from "@potluck/protocol";
import { EngineError } from "../inference/engine.js";
import { PeerCallError } from "@potluck/peer";

/** Engine and peer failures as HTTP errors that keep their specific code (queue_full, …). */
export function asHttpError(error: unknown): unknown {
  if (error instanceof EngineError)
    return new PotluckHttpError(
      error.status,
      error.code,
      error.message,
      error.code === "model_not_found" ? "model" : undefined,
      { cause: error },
    );
  if (error instanceof PeerCallError) {
    const status = error.status === 503 ? 503 : 502;
    return new PotluckHttpError(status, "peer_failed", `${error.layer}: ${error.message}`, undefined, { cause: error });
  }
  return error;
}
