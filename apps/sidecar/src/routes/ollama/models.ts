import { createHash } from "node:crypto";
import { OllamaShowRequest, type ModelInfo } from "@potluck/protocol";
import { Hono } from "hono";
import type { OllamaDeps } from "./deps.js";
import { modelNotFound, ollamaBody } from "./errors.js";
import { resolveModelName } from "./translate.js";

/**
 * GET /api/tags (the models on this machine), GET /api/ps (the ones loaded now) and POST /api/show,
 * from the engine's ModelInfo. Fields a model file does not report get the value Ollama clients
 * handle best (an empty string, 0); each entry also says, under `potluck`, its state and whether it
 * is the random-weight test model.
 */
export function modelRoutes(deps: OllamaDeps) {
  return new Hono()
    .get("/api/tags", (c) =>
      c.json({
        models: deps.engine
          .list()
          .filter((m) => m.state !== "failed")
          .map((m) => listed(deps, m)),
      }),
    )
    .get("/api/ps", (c) =>
      c.json({
        models: deps.engine
          .list()
          .filter((m) => m.state === "ready")
          .map((m) => ({
            ...listed(deps, m),
            size: m.runtime === undefined ? (m.sizeBytes ?? 0) : m.runtime.ramBytes + m.runtime.vramBytes,
            size_vram: m.runtime?.vramBytes ?? 0,
            // Kept loaded (no expiry, or an engine that keeps every model): a date Go and JS both parse.
            expires_at: m.runtime?.expiresAt ?? keptLoadedUntil,
            context_length: m.contextSize ?? 0,
          })),
      }),
    )
    .post("/api/show", async (c) => {
      const body = await ollamaBody(c, OllamaShowRequest);
      const requested = (body.model ?? body.name)!;
      const id = resolveModelName(requested, (name) => deps.engine.state(name) !== undefined);
      const m = deps.engine.state(id);
      if (m === undefined) throw modelNotFound(requested, `not on this machine (${deps.machine})`);
      const family = m.family ?? "";
      return c.json({
        license: "",
        modelfile: `# Served by Potluck on ${deps.machine}${m.testModel ? " (TEST MODEL: random weights)" : ""}\nFROM ${m.id}\n`,
        parameters: m.contextSize === undefined ? "" : `num_ctx ${m.contextSize}`,
        template: "",
        system: "",
        details: details(m),
        model_info: {
          ...(family === "" ? {} : { "general.architecture": family }),
          ...(m.parameters === undefined ? {} : { "general.parameter_count": m.parameters }),
          ...(m.contextSize === undefined || family === "" ? {} : { [`${family}.context_length`]: m.contextSize }),
        },
        capabilities: m.kind === "embedding" ? ["embedding"] : ["completion", "tools"],
        modified_at: modifiedAt(deps, m),
        potluck: potluckOf(deps, m),
      });
    });
}

/** Year 9999: Ollama reports a far-future time for a model kept loaded; Go cannot parse five-digit years. */
const keptLoadedUntil = "9999-12-31T23:59:59Z";

function listed(deps: OllamaDeps, m: ModelInfo) {
  return {
    name: m.id,
    model: m.id,
    modified_at: modifiedAt(deps, m),
    size: m.sizeBytes ?? 0,
    digest: digestOf(m),
    details: details(m),
    potluck: potluckOf(deps, m),
  };
}

function details(m: ModelInfo) {
  return {
    parent_model: "",
    format: "gguf",
    family: m.family ?? "",
    families: m.family === undefined ? null : [m.family],
    parameter_size: m.parameters === undefined ? "" : parameterSize(m.parameters),
    quantization_level: m.quantization ?? "",
  };
}

function potluckOf(deps: OllamaDeps, m: ModelInfo) {
  return { machine: deps.machine, state: m.state, test_model: m.testModel, kind: m.kind ?? "chat", source: m.source };
}

function modifiedAt(deps: OllamaDeps, m: ModelInfo): string {
  return m.modifiedAt ?? new Date(deps.startedAt).toISOString();
}

/**
 * Ollama's digest is its manifest's hash; Potluck has no manifest, so this is a stable hash of what
 * identifies the file here. Clients use it to tell models apart and to notice a changed one.
 */
function digestOf(m: ModelInfo): string {
  return createHash("sha256")
    .update(`${m.id}\n${m.sizeBytes ?? ""}\n${m.modifiedAt ?? ""}`)
    .digest("hex");
}

/** "8.0B", "1.2M": Ollama's one-decimal parameter counts. */
export function parameterSize(count: number): string {
  const units: Array<[number, string]> = [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [scale, unit] of units) if (count >= scale) return `${(count / scale).toFixed(1)}${unit}`;
  return String(count);
}
