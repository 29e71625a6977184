import { existsSync } from "node:fs";
import { join } from "node:path";
import { tinyGguf } from "@potluck/gguf";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LlamaEngine } from "../src/inference/llama-engine.js";
import { pulledDir } from "../src/models/manifest.js";
import { readyTinyEngine, testEngineOptions } from "./fixtures.js";
import { directoryFor, newIdentity, startSidecar, writeRoster, type RunningSidecar } from "./harness.js";
import { startModelServer } from "./model-server.js";

// Two real sidecars on loopback over signed peer calls: mac (no model of its own) and linux (the
// tiny model), plus "ghost", on the roster but not running. Mac's /v1/models lists the household.
const ids = { mac: newIdentity("mac"), linux: newIdentity("linux"), ghost: newIdentity("ghost") };
const roster = writeRoster([
  { name: "mac", owner: "home", identity: ids.mac },
  { name: "linux", owner: "home", identity: ids.linux },
  { name: "ghost", owner: "home", identity: ids.ghost },
]);
const closers: Array<() => Promise<void>> = [];
let mac: RunningSidecar;
let linux: RunningSidecar;
let model: string;
let files: Awaited<ReturnType<typeof startModelServer>>;
const pulledBody = tinyGguf(5);

interface ListBody {
  data: Array<{ id: string; owned_by: string; potluck: Record<string, unknown> & { locations: unknown[] } }>;
  potluck: { machines: Array<{ machine: string; status: string; error?: { layer: string } }> };
}

beforeAll(async () => {
  // Port 9 on loopback: nothing listens, so ghost refuses at once.
  const urls = new Map<string, string>([["ghost", "http://127.0.0.1:9"]]);
  const linuxEngine = await readyTinyEngine();
  const macEngine = new LlamaEngine(testEngineOptions);
  model = linuxEngine.id;
  linux = await startSidecar({
    machine: "linux",
    engine: linuxEngine.engine,
    identity: ids.linux,
    directory: directoryFor(roster.path, "linux", urls),
  });
  mac = await startSidecar({
    machine: "mac",
    engine: macEngine,
    identity: ids.mac,
    directory: directoryFor(roster.path, "mac", urls),
  });
  urls.set("mac", mac.url).set("linux", linux.url);
  files = await startModelServer(new Map([["/m/pulled-tiny.gguf", { body: pulledBody }]]));
  closers.push(
    () => files.close(),
    () => mac.close(),
    () => linux.close(),
    () => linuxEngine.engine.close(),
    () => macEngine.close(),
    async () => roster.cleanup(),
  );
}, 120_000);

afterAll(async () => {
  for (const close of closers) await close().catch(() => undefined);
});

describe("the household's GET /v1/models", () => {
  it("lists another machine's model, where it lives and its state; a machine that is down as unreachable", async () => {
    const res = await fetch(`${mac.url}/v1/models`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as ListBody;
    const entry = body.data.find((m) => m.id === model);
    expect(entry?.potluck).toMatchObject({ machine: "linux", relation: "own", state: "ready", test_model: true });
    expect(entry?.owned_by).toContain("linux");
    expect(entry?.potluck.locations).toHaveLength(1);
    const machines = Object.fromEntries(body.potluck.machines.map((m) => [m.machine, m]));
    expect(machines.mac?.status).toBe("ok");
    expect(machines.linux?.status).toBe("ok");
    expect(machines.ghost?.status).toBe("unreachable");
    expect(machines.ghost?.error?.layer).toBeTruthy();
    // The official client reads it as a model list.
    const client = new OpenAI({ baseURL: `${mac.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const listed = [];
    for await (const m of client.models.list()) listed.push(m.id);
    expect(listed).toContain(model);
  });

  it("?scope=local lists only this machine", async () => {
    const body = (await (await fetch(`${mac.url}/v1/models?scope=local`)).json()) as ListBody;
    expect(body.data.find((m) => m.id === model)).toBeUndefined();
    expect(body.potluck.machines.map((m) => m.machine)).toEqual(["mac"]);
  });

  it("a chat naming a model that lives only on another machine is served there, and /metrics counts it", async () => {
    const client = new OpenAI({ baseURL: `${mac.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const reply = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "hello" }],
      max_tokens: 8,
    });
    expect((reply as unknown as { served_by: string }).served_by).toBe("linux");
    const text = await (await fetch(`${mac.url}/metrics`)).text();
    expect(text).toMatch(/potluck_sidecar_requests_total\{route="own",outcome="ok"\} 1/);
    expect(text).toMatch(/potluck_sidecar_time_to_first_token_seconds_count\{route="own"\} 1/);
    expect(Number(/potluck_sidecar_completion_tokens_total\{route="own"\} (\d+)/.exec(text)?.[1])).toBeGreaterThan(0);
    // Ghost's probe failed while routing: counted by the layer that failed.
    expect(text).toMatch(/potluck_sidecar_peer_errors_total\{layer="[a-z-]+"\} [1-9]/);
    expect(text).toMatch(/potluck_sidecar_queue_depth 0/);
    // Linux ran it for mac: counted there as served for a peer, beside its one ready model.
    const linuxText = await (await fetch(`${linux.url}/metrics`)).text();
    expect(linuxText).toMatch(/potluck_sidecar_requests_total\{route="for_peer",outcome="ok"\} 1/);
    expect(linuxText).toMatch(/potluck_sidecar_time_to_first_token_seconds_count\{route="for_peer"\} 1/);
    expect(linuxText).toMatch(/potluck_sidecar_models\{state="ready"\} 1/);
  });

  it("serves /metrics to loopback callers only", async () => {
    // app.request() has no socket: the local API's guard treats it as a caller off this machine.
    expect((await mac.service.app.request("/metrics")).status).toBe(403);
  });
});

describe("pulling through the sidecar", () => {
  it("streams progress as NDJSON, then registers the model with the engine", async () => {
    const res = await fetch(`${mac.url}/v1/potluck/models/pull`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ref: `${files.url}/m/pulled-tiny.gguf` }),
    });
    expect(res.headers.get("content-type")).toContain("application/x-ndjson");
    const lines = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { status: string; id?: string; total?: number; completed?: number });
    expect(lines.at(-1)).toMatchObject({ status: "success", id: "pulled-tiny", already: false });
    expect(lines.some((l) => l.status.startsWith("downloading") && l.total === pulledBody.length)).toBe(true);
    expect(mac.service.engine.state("pulled-tiny")?.state).toBe("ready");
    const local = (await (await fetch(`${mac.url}/v1/models?scope=local`)).json()) as ListBody;
    expect(local.data.map((m) => m.id)).toContain("pulled-tiny");
    const pulled = (await (await fetch(`${mac.url}/v1/potluck/models/pulled`)).json()) as { models: { id: string }[] };
    expect(pulled.models.map((m) => m.id)).toEqual(["pulled-tiny"]);
    // Another file of the same name is a clash, refused with a status before anything downloads.
    const clash = await fetch(`${mac.url}/v1/potluck/models/pull`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ref: `${files.url}/elsewhere/pulled-tiny.gguf` }),
    });
    expect(clash.status).toBe(409);
    expect(await clash.json()).toMatchObject({ error: { code: "model_exists" } });
  });

  it("removes only what it pulled; anything else is refused with why", async () => {
    const refused = await fetch(`${linux.url}/v1/potluck/models/${model}`, { method: "DELETE" });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: { code: "not_pulled", field: "model" } });
    expect((await fetch(`${mac.url}/v1/potluck/models/nothing-here`, { method: "DELETE" })).status).toBe(404);
    const removed = await fetch(`${mac.url}/v1/potluck/models/pulled-tiny`, { method: "DELETE" });
    expect(removed.status).toBe(200);
    expect(mac.service.engine.state("pulled-tiny")).toBeUndefined();
    expect(existsSync(join(pulledDir(mac.dataDir), "pulled-tiny.gguf"))).toBe(false);
  });

  it("refuses a bad reference with a 400 naming the field", async () => {
    const res = await fetch(`${mac.url}/v1/potluck/models/pull`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ref: "hf:only/two" }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "invalid_ref", field: "ref" } });
    const noRef = await fetch(`${mac.url}/v1/potluck/models/pull`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sha256: "zz" }),
    });
    expect(noRef.status).toBe(400);
  });
});
