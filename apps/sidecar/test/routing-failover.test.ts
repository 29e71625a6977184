import type { Capabilities, InferStreamChunk, ModelInfo, PeerInferRequest } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { EngineError, type EngineEvent, type InferenceEngine } from "../src/inference/engine.js";
import type { PeerDirectory, PeerRecord } from "../src/peer/directory.js";
import { attemptsMax } from "../src/routing/failover.js";
import { PeerCallError } from "@potluck/peer";
import { PathConfirmLimits } from "../src/routing/confirmed.js";
import { Router, type ChatJob, type RouterPeerClient } from "../src/routing/router.js";
import { recordingUsage } from "./harness.js";

// The router's failover at its boundary: a fake engine and a fake peer client whose behaviour per
// machine is scripted, so each way a candidate can fail before (or after) its first token is
// exercised exactly. The real HTTP path is covered in peer-routing.test.ts.

type Behaviour = "serves" | "refuses" | "unreachable" | "breaks-before-token" | "breaks-after-token";
const model = "m";

function engineThat(behaviour: "absent" | "serves" | "queue-full"): InferenceEngine & { runs: number } {
  const info: ModelInfo = { id: model, state: "ready", testModel: true };
  const engine = {
    runs: 0,
    load: async () => undefined,
    unload: async () => undefined,
    list: () => (behaviour === "absent" ? [] : [info]),
    state: (id: string) => (behaviour === "absent" || id !== model ? undefined : info),
    embed: async () => ({ vectors: [], promptTokens: 0 }),
    close: async () => undefined,
    async *stream(): AsyncGenerator<EngineEvent> {
      engine.runs++;
      if (behaviour === "queue-full")
        throw new EngineError(
          503,
          "queue_full",
          "model m is busy: its request queue is full (4 waiting); retry shortly",
        );
      yield { type: "token", text: "local" };
      yield { type: "done", finishReason: "stop", usage: { promptTokens: 3, completionTokens: 1 } };
    },
  };
  return engine;
}

function peersOf(machines: Array<[string, string]>): PeerDirectory {
  const records: PeerRecord[] = machines.map(([machine, owner]) => ({
    machine,
    owner,
    url: `http://${machine}.test`,
    identityPublicKey: "unused",
  }));
  return { peers: async () => records, signer: async () => undefined };
}

/** A peer client whose /peer/infer behaves per machine; probes and capabilities always pass. */
function scriptedClient(behaviours: Record<string, Behaviour>): RouterPeerClient & { inferred: string[] } {
  const inferred: string[] = [];
  return {
    inferred,
    probe: async (peer) => ({ latencyMs: Object.keys(behaviours).indexOf(peer.machine) + 1 }),
    capabilities: async (peer) =>
      ({
        machine: peer.machine,
        owner: peer.owner,
        models: [{ id: model, state: "ready", testModel: true }],
      }) as unknown as Capabilities,
    async *infer(peer: PeerRecord, request: PeerInferRequest): AsyncGenerator<InferStreamChunk> {
      inferred.push(peer.machine);
      const behaviour = behaviours[peer.machine];
      if (behaviour === "refuses")
        throw new PeerCallError(
          "model-runtime",
          `${peer.machine} refused POST /peer/infer (503 queue_full: busy)`,
          503,
        );
      if (behaviour === "unreachable")
        throw new PeerCallError("data-plane", `POST ${peer.url}/peer/infer: connection refused`);
      if (behaviour === "breaks-before-token") {
        yield {
          type: "error",
          code: "peer_stream_broken",
          message: `${peer.machine} stopped streaming after 0 token chunk(s): connection reset`,
          layer: "data-plane",
        };
        return;
      }
      yield { type: "token", text: `from ${peer.machine}` };
      if (behaviour === "breaks-after-token") {
        yield {
          type: "error",
          code: "peer_stream_broken",
          message: `${peer.machine} stopped streaming after 1 token chunk(s): connection reset`,
          layer: "data-plane",
        };
        return;
      }
      yield {
        type: "done",
        servedBy: peer.machine,
        testModel: true,
        finishReason: "stop",
        usage: { promptTokens: 3, completionTokens: request.maxTokens },
        at: new Date().toISOString(),
      };
    },
  };
}

function routerWith(o: {
  engine: InferenceEngine;
  peers: Array<[string, string]>;
  behaviours: Record<string, Behaviour>;
}) {
  const client = scriptedClient(o.behaviours);
  const usage = recordingUsage();
  const router = new Router({
    machine: "mac",
    owner: "home",
    engine: o.engine,
    directory: peersOf(o.peers),
    client,
    usage,
  });
  return { router, client, usage };
}

const job = (signal?: AbortSignal): ChatJob => ({
  model,
  messages: [{ role: "user", content: "hi" }],
  maxTokens: 2,
  signal,
});

async function drain(chunks: AsyncGenerator<InferStreamChunk>): Promise<InferStreamChunk[]> {
  const all: InferStreamChunk[] = [];
  for await (const chunk of chunks) all.push(chunk);
  return all;
}

describe("routing failover before the first token", () => {
  it("tries the next candidate when the chosen one refuses, and the reply names who took over", async () => {
    const { router, client, usage } = routerWith({
      engine: engineThat("absent"),
      peers: [
        ["linux", "home"],
        ["friend", "alice"],
      ],
      behaviours: { linux: "refuses", friend: "serves" },
    });
    const route = await router.plan(model);
    expect(route.choice.machine).toBe("linux");
    const chunks = await drain(route.run(job()));
    expect(client.inferred).toEqual(["linux", "friend"]);
    expect(route.choice).toMatchObject({ machine: "friend", kind: "peer", owner: "alice" });
    expect(chunks.at(-1)).toMatchObject({ type: "done", servedBy: "friend" });
    // Only the candidate that served is metered: its hold, voided as the fake peer names no settlement.
    expect(usage.jobs.map((j) => [j.side, j.servedBy, j.counterparty])).toEqual([
      ["hold", "friend", "alice"],
      ["void", "friend", "alice"],
    ]);
  });

  it("falls back from a local run that fails before its first token to a probed own machine", async () => {
    const engine = engineThat("queue-full");
    const { router, client } = routerWith({ engine, peers: [["linux", "home"]], behaviours: { linux: "serves" } });
    const route = await router.plan(model);
    expect(route.choice.kind).toBe("local");
    // No peer is contacted before the local run is tried (the local fast path has no probe).
    expect(client.inferred).toEqual([]);
    const chunks = await drain(route.run(job()));
    expect(engine.runs).toBe(1);
    expect(route.choice).toMatchObject({ machine: "linux", kind: "own" });
    expect(chunks[0]).toEqual({ type: "token", text: "from linux" });
  });

  it("treats a stream that breaks before any token like a refusal", async () => {
    const { router, client } = routerWith({
      engine: engineThat("absent"),
      peers: [
        ["linux", "home"],
        ["tv", "home"],
      ],
      behaviours: { linux: "breaks-before-token", tv: "serves" },
    });
    const route = await router.plan(model);
    const chunks = await drain(route.run(job()));
    expect(client.inferred).toEqual(["linux", "tv"]);
    expect(chunks.at(-1)).toMatchObject({ type: "done", servedBy: "tv" });
  });

  it("lists every candidate with the layer that failed when all of them fail", async () => {
    const { router } = routerWith({
      engine: engineThat("absent"),
      peers: [
        ["linux", "home"],
        ["tv", "home"],
        ["friend", "alice"],
      ],
      behaviours: { linux: "unreachable", tv: "breaks-before-token", friend: "refuses" },
    });
    const route = await router.plan(model);
    const error = await drain(route.run(job())).then(
      () => undefined,
      (e: unknown) => e as Error & { status?: number; code?: string },
    );
    expect(error).toMatchObject({ status: 503, code: "no_route" });
    expect(error!.message).toMatch(/mac \(local\): model-runtime — does not have model m here/);
    expect(error!.message).toMatch(/linux \(own\): data-plane — failed before the first token: .*connection refused/);
    expect(error!.message).toMatch(/tv \(own\): data-plane — failed before the first token: peer_stream_broken/);
    expect(error!.message).toMatch(/friend \(peer\): model-runtime — failed before the first token: .*queue_full/);
  });

  it("tries at most attemptsMax candidates and says which were not tried", async () => {
    const peers: Array<[string, string]> = ["a", "b", "c", "d", "e"].map((m) => [m, "home"]);
    const { router, client } = routerWith({
      engine: engineThat("absent"),
      peers,
      behaviours: { a: "unreachable", b: "unreachable", c: "unreachable", d: "unreachable", e: "serves" },
    });
    const route = await router.plan(model);
    const error = await drain(route.run(job())).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(client.inferred).toEqual(["a", "b", "c"].slice(0, attemptsMax));
    expect(error?.message).toMatch(/e \(own\): ok — ready, probe .* not tried \(at most 3 attempts per request\)/);
  });

  it("keeps a lone candidate's own error (a full queue stays a 503 queue_full)", async () => {
    const { router } = routerWith({ engine: engineThat("queue-full"), peers: [], behaviours: {} });
    const route = await router.plan(model);
    const error = await drain(route.run(job())).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EngineError);
    expect(error).toMatchObject({ code: "queue_full" });
  });

  it("does not fail over after the first token: the stream ends with the serving machine's error", async () => {
    const { router, client } = routerWith({
      engine: engineThat("absent"),
      peers: [
        ["linux", "home"],
        ["tv", "home"],
      ],
      behaviours: { linux: "breaks-after-token", tv: "serves" },
    });
    const route = await router.plan(model);
    const chunks = await drain(route.run(job()));
    expect(client.inferred).toEqual(["linux"]);
    expect(chunks).toEqual([
      { type: "token", text: "from linux" },
      {
        type: "error",
        code: "peer_stream_broken",
        message: "linux stopped streaming after 1 token chunk(s): connection reset",
        layer: "data-plane",
      },
    ]);
  });

  it("does not fail over once the client has gone away", async () => {
    const abort = new AbortController();
    abort.abort(new Error("client went away"));
    const { router } = routerWith({
      engine: engineThat("queue-full"),
      peers: [["linux", "home"]],
      behaviours: { linux: "serves" },
    });
    const route = await router.plan(model);
    const error = await drain(route.run(job(abort.signal))).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EngineError);
    expect(route.choice.kind).toBe("local");
  });
});

describe("what the router asks a peer before routing to it", () => {
  /** A peer client that answers for the model in its probe, or not (a version before that field). */
  function countingClient(probeAnswersModel: boolean) {
    const asked: string[] = [];
    const client: RouterPeerClient = {
      probe: async (_peer, options) => {
        asked.push(`probe ${options?.model ?? "-"}`);
        return probeAnswersModel
          ? { latencyMs: 1, model: { info: { id: model, state: "ready", testModel: true }, available: [model] } }
          : { latencyMs: 1 };
      },
      capabilities: async (peer) => {
        asked.push("capabilities");
        return {
          machine: peer.machine,
          owner: peer.owner,
          models: [{ id: model, state: "loading", progress: 0.5, testModel: true }],
        } as unknown as Capabilities;
      },
      infer: scriptedClient({ linux: "serves" }).infer,
    };
    return { client, asked };
  }

  it("probes naming the model and, when the probe answers for it, asks nothing more", async () => {
    const { client, asked } = countingClient(true);
    const router = new Router({
      machine: "mac",
      owner: "home",
      engine: engineThat("absent"),
      directory: peersOf([["linux", "home"]]),
      client,
      usage: recordingUsage(),
    });
    expect((await router.plan(model)).choice.machine).toBe("linux");
    expect(asked).toEqual([`probe ${model}`]);
  });

  it("asks the capabilities of a peer whose probe does not answer for the model", async () => {
    const { client, asked } = countingClient(false);
    const router = new Router({
      machine: "mac",
      owner: "home",
      engine: engineThat("absent"),
      directory: peersOf([["linux", "home"]]),
      client,
      usage: recordingUsage(),
    });
    const route = await router.plan(model);
    expect(asked).toEqual([`probe ${model}`, "capabilities"]);
    // Its model is loading there (50%): a candidate now (the job joins the load), not a refusal.
    expect(route.choice.machine).toBe("linux");
  });
});

describe("the head start for the own machine that served the model last", () => {
  /**
   * A peer client whose probes wait for `release()`, logging every call in order, so a test can
   * see what was sent while the probe was still in flight. `probeFails` rules a machine out.
   */
  function gatedClient(o: { peers: Record<string, Behaviour>; probeFails?: Set<string> }) {
    const log: string[] = [];
    const aborted: string[] = [];
    let release: () => void = () => undefined;
    let gate = Promise.resolve();
    let releaseTokens: () => void = () => undefined;
    let tokens = Promise.resolve();
    const scripted = scriptedClient(o.peers);
    const client: RouterPeerClient = {
      probe: async (peer) => {
        log.push(`probe ${peer.machine}`);
        await gate;
        log.push(`probe ${peer.machine} answered`);
        if (o.probeFails?.has(peer.machine))
          throw new PeerCallError("data-plane", `POST ${peer.url}/peer/probe: no answer in time`);
        return { latencyMs: 1, model: { info: { id: model, state: "ready", testModel: true }, available: [model] } };
      },
      capabilities: scripted.capabilities,
      infer: async function* (peer, request, signal) {
        log.push(`infer ${peer.machine}`);
        signal?.addEventListener("abort", () => aborted.push(peer.machine), { once: true });
        await tokens;
        yield* scripted.infer(peer, request, signal);
      },
    };
    return {
      client,
      log,
      aborted,
      hold: () => {
        gate = new Promise((resolve) => (release = resolve));
      },
      release: () => release(),
      /** Holds every /peer/infer's first chunk until `releaseTokens()`. */
      holdTokens: () => {
        tokens = new Promise((resolve) => (releaseTokens = resolve));
      },
      releaseTokens: () => releaseTokens(),
    };
  }

  /** `confirmedForMs` 0: every head-started first token waits for its probe (confirmed.ts off). */
  function routerOn(client: RouterPeerClient, peers: Array<[string, string]>, confirmedForMs = 0) {
    return new Router({
      machine: "mac",
      owner: "home",
      engine: engineThat("absent"),
      directory: peersOf(peers),
      client,
      usage: recordingUsage(),
      confirmedForMs,
    });
  }

  it("sends the job just before the fresh probe, and forwards nothing until the probe confirms the machine", async () => {
    const gated = gatedClient({ peers: { linux: "serves" } });
    const router = routerOn(gated.client, [["linux", "home"]]);
    await drain((await router.plan(model)).run(job())); // linux serves once: no head start yet
    expect(gated.log).toEqual(["probe linux", "probe linux answered", "infer linux"]);

    gated.log.length = 0;
    gated.hold();
    const route = await router.plan(model);
    expect(route.choice.machine).toBe("linux");
    const chunks = route.run(job());
    let firstArrived = false;
    const first = chunks.next().then((r) => {
      firstArrived = true;
      return r;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(gated.log).toEqual(["infer linux", "probe linux"]);
    expect(firstArrived).toBe(false);
    gated.release();
    expect((await first).value).toEqual({ type: "token", text: "from linux" });
    expect(gated.log).toEqual(["infer linux", "probe linux", "probe linux answered"]);
    expect((await drain(chunks)).at(-1)).toMatchObject({ type: "done", servedBy: "linux" });
    expect(gated.aborted).toEqual([]);
  });

  it("cancels the early job when the fresh probe rules that machine out, and routes by the probes", async () => {
    const probeFails = new Set<string>();
    const gated = gatedClient({ peers: { linux: "serves", desk: "serves" }, probeFails });
    const router = routerOn(gated.client, [
      ["linux", "home"],
      ["desk", "home"],
    ]);
    await drain((await router.plan(model)).run(job())); // linux answers its probe first: it serves
    gated.log.length = 0;
    probeFails.add("linux");
    const route = await router.plan(model);
    const all = await drain(route.run(job()));
    expect(gated.aborted).toEqual(["linux"]);
    expect(all.at(-1)).toMatchObject({ type: "done", servedBy: "desk" });
    expect(route.choice.machine).toBe("desk");
    // The early job was cancelled before desk was asked to run it.
    expect(gated.log.indexOf("infer desk")).toBeGreaterThan(gated.log.indexOf("probe linux answered"));
  });

  it("stops the early job the moment its probe fails, not after the diagnosis that follows", async () => {
    const probeFails = new Set<string>();
    const gated = gatedClient({ peers: { linux: "serves" }, probeFails });
    let finishDiagnosis: () => void = () => undefined;
    const diagnosed = new Promise<void>((resolve) => (finishDiagnosis = resolve));
    let abortedWhileDiagnosing: string[] = [];
    const router = new Router({
      machine: "mac",
      owner: "home",
      engine: engineThat("absent"),
      directory: peersOf([["linux", "home"]]),
      client: gated.client,
      usage: recordingUsage(),
      confirmedForMs: 0,
      diagnose: async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        abortedWhileDiagnosing = [...gated.aborted];
        await diagnosed;
        return { layer: "data-plane" as const, reason: "firewall likely blocking potluck0" };
      },
    });
    await drain((await router.plan(model)).run(job()));
    probeFails.add("linux");
    const failing = drain((await router.plan(model)).run(job())).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    finishDiagnosis();
    expect(abortedWhileDiagnosing).toEqual(["linux"]);
    expect((await failing)?.message).toMatch(/linux \(own\): data-plane — firewall likely blocking potluck0/);
  });

  it("cancels the early job when nothing can serve, and still names every candidate's layer", async () => {
    const probeFails = new Set<string>();
    const gated = gatedClient({ peers: { linux: "serves" }, probeFails });
    const router = routerOn(gated.client, [["linux", "home"]]);
    await drain((await router.plan(model)).run(job()));
    probeFails.add("linux");
    const error = await drain((await router.plan(model)).run(job())).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(gated.aborted).toEqual(["linux"]);
    expect(error?.message).toMatch(/linux \(own\): data-plane — .*no answer in time/);
    // Its failed probe cost it the head start: the next prompt waits for the probe again.
    gated.log.length = 0;
    const again = await router
      .plan(model)
      .then((route) => drain(route.run(job())))
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(again?.message).toMatch(/no answer in time/);
    expect(gated.log).toEqual(["probe linux", "probe linux answered"]);
  });

  it("gives no head start when it is turned off (POTLUCK_HEAD_START=0)", async () => {
    const gated = gatedClient({ peers: { linux: "serves" } });
    const router = new Router({
      machine: "mac",
      owner: "home",
      engine: engineThat("absent"),
      directory: peersOf([["linux", "home"]]),
      client: gated.client,
      usage: recordingUsage(),
      headStart: false,
      confirmedForMs: PathConfirmLimits.onMs,
    });
    await drain((await router.plan(model)).run(job()));
    gated.log.length = 0;
    await drain((await router.plan(model)).run(job()));
    expect(gated.log).toEqual(["probe linux", "probe linux answered", "infer linux"]);
  });

  it("never starts early on a trusted peer: its work is billed, so it waits for the route", async () => {
    const gated = gatedClient({ peers: { friend: "serves" } });
    const router = routerOn(gated.client, [["friend", "alice"]]);
    await drain((await router.plan(model)).run(job()));
    gated.log.length = 0;
    gated.hold();
    const planned = router.plan(model);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(gated.log).toEqual(["probe friend"]);
    gated.release();
    await drain((await planned).run(job()));
    expect(gated.log).toEqual(["probe friend", "probe friend answered", "infer friend"]);
  });

  it("fails over from a confirmed machine that refuses the early job, like any candidate", async () => {
    const behaviours: Record<string, Behaviour> = { linux: "serves", desk: "serves" };
    const gated = gatedClient({ peers: behaviours });
    const router = routerOn(gated.client, [
      ["linux", "home"],
      ["desk", "home"],
    ]);
    await drain((await router.plan(model)).run(job()));
    behaviours.linux = "refuses";
    const all = await drain((await router.plan(model)).run(job()));
    expect(all.at(-1)).toMatchObject({ type: "done", servedBy: "desk" });
  });

  describe("on a path confirmed moments ago (confirmed.ts)", () => {
    it("sends the first token on before that job's own fresh probe, which goes out once the token is in", async () => {
      const gated = gatedClient({ peers: { linux: "serves" } });
      const router = routerOn(gated.client, [["linux", "home"]], PathConfirmLimits.onMs);
      await drain((await router.plan(model)).run(job())); // probed, then served: confirmed
      gated.log.length = 0;
      gated.hold();
      const chunks = (await router.plan(model)).run(job());
      expect((await chunks.next()).value).toEqual({ type: "token", text: "from linux" });
      // Nothing of the probe ran before the first token went out; it is sent once that was taken.
      expect(gated.log).toEqual(["infer linux"]);
      // Its probe is still held: the reply goes on without waiting for it.
      expect((await chunks.next()).value).toMatchObject({ type: "done", servedBy: "linux" });
      expect(gated.log).toEqual(["infer linux", "probe linux"]);
      gated.release();
      expect(await drain(chunks)).toEqual([]);
      expect(gated.aborted).toEqual([]);
    });

    it("a fresh probe that fails after the first token costs the next prompt its head start", async () => {
      const probeFails = new Set<string>();
      const gated = gatedClient({ peers: { linux: "serves" }, probeFails });
      const router = routerOn(gated.client, [["linux", "home"]], PathConfirmLimits.onMs);
      await drain((await router.plan(model)).run(job()));
      probeFails.add("linux");
      // This reply streams (its path plainly works); its probe, sent after the first token, fails.
      expect((await drain((await router.plan(model)).run(job()))).at(-1)).toMatchObject({ type: "done" });
      await new Promise((resolve) => setTimeout(resolve, 10));
      gated.log.length = 0;
      const error = await router
        .plan(model)
        .then((route) => drain(route.run(job())))
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(error?.message).toMatch(/linux \(own\): data-plane — .*no answer in time/);
      expect(gated.log).toEqual(["probe linux", "probe linux answered"]);
    });

    it("waits behind the fresh probe again when the first token is late, so a vanished machine is found at the probe's pace", async () => {
      const gated = gatedClient({ peers: { linux: "serves" } });
      const router = routerOn(gated.client, [["linux", "home"]], PathConfirmLimits.onMs);
      await drain((await router.plan(model)).run(job()));
      gated.log.length = 0;
      gated.holdTokens();
      gated.hold();
      const chunks = (await router.plan(model)).run(job());
      let firstArrived = false;
      const first = chunks.next().then((r) => {
        firstArrived = true;
        return r;
      });
      await new Promise((resolve) => setTimeout(resolve, PathConfirmLimits.probeAfterMs / 2));
      expect(gated.log).toEqual(["infer linux"]);
      await new Promise((resolve) => setTimeout(resolve, PathConfirmLimits.probeAfterMs));
      expect(gated.log).toEqual(["infer linux", "probe linux"]);
      gated.releaseTokens();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(firstArrived).toBe(false); // the probe decides again
      gated.release();
      expect((await first).value).toEqual({ type: "token", text: "from linux" });
      expect((await drain(chunks)).at(-1)).toMatchObject({ type: "done", servedBy: "linux" });
    });

    it("a confirmed machine that refuses the early job is routed by the fresh probe, like any candidate", async () => {
      const behaviours: Record<string, Behaviour> = { linux: "serves", desk: "serves" };
      const gated = gatedClient({ peers: behaviours });
      const router = routerOn(
        gated.client,
        [
          ["linux", "home"],
          ["desk", "home"],
        ],
        PathConfirmLimits.onMs,
      );
      await drain((await router.plan(model)).run(job()));
      behaviours.linux = "refuses";
      gated.log.length = 0;
      const all = await drain((await router.plan(model)).run(job()));
      expect(all.at(-1)).toMatchObject({ type: "done", servedBy: "desk" });
      expect(gated.log.slice(0, 2)).toEqual(["infer linux", "probe linux"]);
    });
  });
});
