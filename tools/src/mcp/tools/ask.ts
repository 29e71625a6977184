import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { ChatCompletionResponse, MachineName, SidecarLimits } from "@potluck/protocol";
import { z } from "zod";
import { answer, guarded } from "../result.js";
import { SidecarError, sidecarJson, type SidecarTarget } from "../sidecar.js";

/** A whole answer may take this long (a model loading on demand, a long reply); the sidecar ends most sooner. */
const askTimeoutMs = 10 * 60_000;
/** Largest reply an agent may ask for in one call; the model's context caps it further. */
const askMaxTokensMax = 8_192;

const AskInput = z.strictObject({
  model: z.string().min(1).max(256).describe("the model's id, as the models tool lists it"),
  prompt: z
    .string()
    .min(1)
    .max(SidecarLimits.messageCharsMax)
    .describe(`what to ask, sent as one user message (at most ${SidecarLimits.messageCharsMax} characters)`),
  machine: MachineName.optional().describe(
    "run it on this machine of the household, or fail saying why; leave out to let Potluck choose",
  ),
  max_tokens: z
    .number()
    .int()
    .min(1)
    .max(askMaxTokensMax)
    .optional()
    .describe("longest reply in tokens; leave out for the sidecar's default"),
});

/** The footer every reply carries: who served it and how it was reached. */
const Reply = ChatCompletionResponse.extend({
  usage: z.object({ completion_tokens: z.number() }).optional(),
  potluck: z.object({ served_by: z.string(), route: z.string(), test_model: z.boolean() }),
});

export function registerAsk(server: McpServer, sidecar: SidecarTarget): void {
  server.registerTool(
    "ask",
    {
      title: "Ask a model of the household",
      description:
        "Sends a prompt to a model on this machine or another machine of the household (Potluck routes it " +
        "to one that has the model) and returns the reply, then which machine served it, how it was reached " +
        "(local, own machine or trusted peer) and whether the model is the random-weight test model.",
      inputSchema: AskInput,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (input) =>
      guarded(async () => {
        const body = await sidecarJson(sidecar, "POST", "/v1/chat/completions", {
          body: {
            model: input.model,
            messages: [{ role: "user", content: input.prompt }],
            max_tokens: input.max_tokens,
            potluck: input.machine === undefined ? undefined : { on: input.machine },
          },
          timeoutMs: askTimeoutMs,
        });
        const parsed = Reply.safeParse(body);
        if (!parsed.success)
          throw new SidecarError("the sidecar's reply had no text or no footer; is it the same version?");
        const reply = parsed.data.choices[0]?.message.content ?? "";
        const { served_by, route, test_model } = parsed.data.potluck;
        const tokens = parsed.data.usage?.completion_tokens;
        const test = test_model ? " · TEST MODEL (random weights: the text is gibberish)" : "";
        return answer(`${reply}\n\n— served by ${served_by} (route: ${route}) · ${input.model}${test}`, {
          reply,
          model: input.model,
          served_by,
          route,
          test_model,
          ...(tokens === undefined ? {} : { completion_tokens: tokens }),
        });
      }),
  );
}
