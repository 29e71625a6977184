import type { ChatJob, PlannedRoute, Router } from "../src/routing/router.js";
import { PotluckHttpError, type InferStreamChunk, type ModelInfo } from "@potluck/protocol";
import type { InferenceEngine } from "../src/inference/engine.js";
import { ollamaRoutes, type ModelPuller } from "../src/routes/ollama/index.js";

/**
 * A faked engine and router behind the real Ollama routes, for tests of the translation alone
 * (`app.request()`, no port). The real path is covered by ollama-api.test.ts.
 */
export const fakeModel: ModelInfo = {
  id: "fake",
  state: "ready",
  testModel: true,
  contextSize: 2048,
  parameters: 1_234_567,
  kind: "chat",
  sizeBytes: 4_096,
  family: "llama",
  quantization: "F32",
  modifiedAt: "2026-01-02T03:04:05.000Z",
  runtime: { backend: "cpu", gpuLayers: 0, vramBytes: 0, ramBytes: 8_192, expiresAt: "2026-01-02T04:04:05.000Z" },
};

export function done(finishReason: "stop" | "length" | "tool_calls" = "stop"): InferStreamChunk {
  return {
    type: "done",
    servedBy: "mac",
    testModel: true,
    finishReason,
    usage: { promptTokens: 7, completionTokens: 3 },
    at: "2026-01-02T03:04:05.000Z",
  };
}

export interface FakeSidecar {
  app: ReturnType<typeof ollamaRoutes>;
  /** Every job the router was asked to run, as the engine would get it. */
  jobs: ChatJob[];
  unloaded: string[];
  post(path: string, body: unknown): Promise<{ status: number; text: string; json: () => any }>;
}

/** `reply` scripts what the serving machine streams for each job. */
export function fakeSidecar(
  options: {
    reply?: (job: ChatJob) => InferStreamChunk[];
    models?: ModelInfo[];
    plan?: Router["plan"];
    puller?: ModelPuller;
  } = {},
): FakeSidecar {
  const models = options.models ?? [fakeModel];
  const jobs: ChatJob[] = [];
  const unloaded: string[] = [];
  const reply = options.reply ?? (() => [{ type: "token", text: "Hi" }, { type: "token", text: " there" }, done()]);
  const engine: InferenceEngine = {
    load: async () => undefined,
    unload: async (id) => void unloaded.push(id),
    list: () => models.map((m) => ({ ...m })),
    state: (id) => models.find((m) => m.id === id),
    stream: async function* () {
      throw new Error("the fake router runs jobs, not the engine");
    },
    embed: async (_id, inputs) => ({ vectors: inputs.map((_, i) => [3, 4, i]), promptTokens: inputs.length * 2 }),
    close: async () => undefined,
  };
  const plan: Router["plan"] =
    options.plan ??
    (async (model) => {
      // As the real router answers when every machine said it has no such model.
      if (engine.state(model) === undefined)
        throw new PotluckHttpError(404, "model_not_found", `model: no machine has a model called "${model}"`, "model");
      const route: PlannedRoute = {
        choice: { machine: "mac", owner: "home", kind: "local", testModel: true },
        async *run(job) {
          jobs.push(job);
          yield* reply(job);
        },
      };
      return route;
    });
  const app = ollamaRoutes({
    machine: "mac",
    engine,
    router: { plan },
    startedAt: Date.parse("2026-01-01T00:00:00Z"),
    version: "test",
    ...(options.puller === undefined ? {} : { puller: options.puller }),
  });
  return {
    app,
    jobs,
    unloaded,
    async post(path, body) {
      const res = await app.request(path, {
        method: "POST",
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, text, json: () => JSON.parse(text) };
    },
  };
}

/** NDJSON text as its objects. */
export function lines(text: string): any[] {
  return text
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));
}
