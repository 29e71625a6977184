import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { ModelListResponse } from "@potluck/protocol";
import { z } from "zod";
import { answer, guarded } from "../result.js";
import { SidecarError, sidecarJson, type SidecarTarget } from "../sidecar.js";

const requestTimeoutMs = 30_000;

export function registerModels(server: McpServer, sidecar: SidecarTarget): void {
  server.registerTool(
    "models",
    {
      title: "List the models here",
      description:
        "Lists the models this machine's sidecar knows, with their state (available, loading, ready, failed) and " +
        "whether one is the random-weight test model. Use an id from here as ask's model.",
      inputSchema: z.strictObject({}),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    () =>
      guarded(async () => {
        const parsed = ModelListResponse.safeParse(
          await sidecarJson(sidecar, "GET", "/v1/models", { timeoutMs: requestTimeoutMs }),
        );
        if (!parsed.success)
          throw new SidecarError("the sidecar's model list had an unexpected shape; is it the same version?");
        const models = parsed.data.data.map((m) => ({
          id: m.id,
          state: m.potluck.state,
          test_model: m.potluck.test_model,
          ...(m.potluck.reason === undefined ? {} : { reason: m.potluck.reason }),
        }));
        const lines = models.map(
          (m) =>
            `${m.id}  ${m.state}${m.test_model ? "  (TEST MODEL: random weights)" : ""}${m.reason === undefined ? "" : `  — ${m.reason}`}`,
        );
        return answer(lines.length === 0 ? "no models on this machine" : lines.join("\n"), { models });
      }),
  );
}
