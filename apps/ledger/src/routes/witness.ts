import { WitnessAddCheckpoint, PotluckHttpError, zodHook } from "@potluck/protocol";
import { Hono } from "hono";
import { validator } from "hono/validator";
import { Witness, WitnessConflict } from "../anchors/witness.js";

/** The witness endpoint: cosigns a checkpoint after checking it extends the last one it saw. */
export function witnessRoutes(witness: Witness) {
  return new Hono().post("/add-checkpoint", validator("json", zodHook(WitnessAddCheckpoint)), (c) => {
    const req = c.req.valid("json");
    try {
      const cosignature = witness.addCheckpoint(
        req.oldSize,
        req.proof.map((h) => Buffer.from(h, "hex")),
        req.checkpoint,
      );
      return c.json({ cosignature });
    } catch (error) {
      if (error instanceof WitnessConflict)
        return c.json({ error: { code: "conflict", message: error.message }, knownSize: error.knownSize }, 409);
      throw new PotluckHttpError(422, "not_cosigned", `witness refused: ${(error as Error).message}`, "checkpoint");
    }
  });
}
