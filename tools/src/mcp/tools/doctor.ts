import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { renderReport } from "@potluck/diagnostics";
import { MachineName } from "@potluck/protocol";
import { z } from "zod";
import { diagnose } from "../../cli/commands/doctor.js";
import { answer, guarded } from "../result.js";
import type { SidecarTarget } from "../sidecar.js";

const DoctorInput = z.strictObject({
  machine: MachineName.optional().describe("the machine to check the path to; leave out to check every path"),
  model: z.string().min(1).max(256).optional().describe("check this model instead of the machine's first ready one"),
});

export function registerDoctor(server: McpServer, sidecar: SidecarTarget): void {
  server.registerTool(
    "doctor",
    {
      title: "Why can't a prompt reach a machine?",
      description:
        "Asks this machine's sidecar whether a prompt can reach a machine's model and stream a token back right " +
        "now, layer by layer (local sidecar, coordinator, roster, tunnel, path, peer, capabilities, model runtime, " +
        "first token), and names the first failing layer with its fix. A broken path is a diagnosis, not an error.",
      inputSchema: DoctorInput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (input) =>
      guarded(async () => {
        // The same client as `potluck doctor`: it waits out failures still being confirmed, and reports a
        // sidecar that does not answer as the failing local layer.
        const reports = await diagnose({
          base: sidecar.base,
          peer: input.machine,
          model: input.model,
          port: portOf(sidecar.base),
        });
        return answer(reports.map(renderReport).join("\n"), {
          usable: reports.every((r) => r.usable),
          reports,
        });
      }),
  );
}

function portOf(base: string): number {
  const url = new URL(base);
  return url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
}
