import type { InferStreamChunk } from "@potluck/protocol";
import { PeerCallError } from "@potluck/peer";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { InferenceEngine } from "./inference/engine.js";
import type { CapabilitiesClient } from "./routes/models-list.js";
import type { PlannedRoute, Router, RouterPeerClient } from "./routing/router.js";

/** How a reply was served: here, by an own machine, by a trusted peer; or here for another machine. */
type RouteKind = PlannedRoute["choice"]["kind"] | "for_peer";

/** The peer calls routing and the household list make (libs/peer's `PeerClient` is one). */
export type MeteredPeerClient = RouterPeerClient & CapabilitiesClient;

/**
 * The sidecar's Prometheus metrics, served at GET /metrics to loopback callers (the local API's
 * guard). Per request, not per token: the router and the peer client are wrapped here, so the
 * token loop carries no metric calls. Models and their memory are read from the engine at
 * scrape time. One registry per instance, so tests can run several sidecars side by side.
 */
export class SidecarMetrics {
  readonly registry = new Registry();
  private waiting = 0;
  private running = 0;
  private readonly requests = new Counter({
    name: "potluck_sidecar_requests_total",
    help: "Chat requests by how they were served (local, own machine, trusted peer) and outcome",
    labelNames: ["route", "outcome"],
    registers: [this.registry],
  });
  private readonly firstToken = new Histogram({
    name: "potluck_sidecar_time_to_first_token_seconds",
    help: "From the request reaching the router to its first token, by route",
    labelNames: ["route"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly decodeRate = new Histogram({
    name: "potluck_sidecar_tokens_per_second",
    help: "Completion tokens per second after the first token, per reply, by route",
    labelNames: ["route"],
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
    registers: [this.registry],
  });
  private readonly completionTokens = new Counter({
    name: "potluck_sidecar_completion_tokens_total",
    help: "Completion tokens streamed to clients, by route",
    labelNames: ["route"],
    registers: [this.registry],
  });
  private readonly peerErrors = new Counter({
    name: "potluck_sidecar_peer_errors_total",
    help: "Failed calls to other sidecars (probe, capabilities, infer) by the layer that failed",
    labelNames: ["layer"],
    registers: [this.registry],
  });

  constructor(engine: Pick<InferenceEngine, "list">) {
    const self = this;
    new Gauge({
      name: "potluck_sidecar_queue_depth",
      help: "Chat requests waiting for their first token (queued for a model, or its prompt being read)",
      registers: [this.registry],
      collect() {
        this.set(self.waiting);
      },
    });
    new Gauge({
      name: "potluck_sidecar_requests_in_flight",
      help: "Chat requests streaming tokens now",
      registers: [this.registry],
      collect() {
        this.set(self.running);
      },
    });
    new Gauge({
      name: "potluck_sidecar_models",
      help: "Models on this machine by state (ready ones are loaded)",
      labelNames: ["state"],
      registers: [this.registry],
      collect() {
        const counts = { available: 0, loading: 0, ready: 0, failed: 0 };
        for (const m of engine.list()) counts[m.state]++;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: "potluck_sidecar_model_memory_bytes",
      help: "Memory a loaded model holds, by model and kind (ram, vram), as its runtime reports it",
      labelNames: ["model", "kind"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const m of engine.list()) {
          if (m.runtime === undefined) continue;
          this.set({ model: m.id, kind: "ram" }, m.runtime.ramBytes);
          this.set({ model: m.id, kind: "vram" }, m.runtime.vramBytes);
        }
      },
    });
  }

  /** The router as the API routes see it, each planned route's run observed. */
  instrumentRouter(router: Pick<Router, "plan">): Pick<Router, "plan"> {
    return {
      plan: async (model, on) => {
        const route = await router.plan(model, on).catch((error: unknown) => {
          this.requests.inc({ route: "none", outcome: "no_route" });
          throw error;
        });
        return {
          get choice() {
            return route.choice;
          },
          run: (job) => this.observe(() => route.choice.kind, route.run(job)),
        };
      },
    };
  }

  /** A peer client whose failures are counted by layer; what it returns is passed on unchanged. */
  instrumentPeerClient(client: MeteredPeerClient): MeteredPeerClient {
    const failed = (error: unknown): never => {
      this.peerError(error instanceof PeerCallError ? error.layer : "data-plane");
      throw error;
    };
    const self = this;
    return {
      probe: (peer, options) => client.probe(peer, options).catch(failed),
      capabilities: (peer: Parameters<CapabilitiesClient["capabilities"]>[0], signal?: AbortSignal) =>
        client.capabilities(peer, signal).catch(failed),
      infer: async function* (peer, request, signal) {
        try {
          for await (const chunk of client.infer(peer, request, signal)) {
            if (chunk.type === "error") self.peerError(chunk.layer ?? "first-token");
            yield chunk;
          }
        } catch (error) {
          failed(error);
        }
      },
    };
  }

  peerError(layer: string): void {
    this.peerErrors.inc({ layer });
  }

  /**
   * Observes one reply's stream: time to its first token, its rate after that, its outcome.
   * `kind` is read when needed: a route's choice changes when it fails over before the first token.
   */
  async *observe(kind: RouteKind | (() => RouteKind), chunks: AsyncGenerator<InferStreamChunk>) {
    const kindNow = () => (typeof kind === "function" ? kind() : kind);
    const started = performance.now();
    let firstAt: number | undefined;
    let firstObserved = false;
    // The histogram (a label lookup, a bucket search) is fed once the first token has been handed
    // on, when the next chunk is asked for: by then it is on the wire (BENCHMARKS.md, "Clients").
    const observeFirst = () => {
      if (firstAt === undefined || firstObserved) return;
      firstObserved = true;
      this.firstToken.observe({ route: kindNow() }, (firstAt - started) / 1000);
    };
    let outcome = "aborted";
    this.waiting++;
    try {
      for await (const chunk of chunks) {
        if (firstAt === undefined && (chunk.type === "token" || chunk.type === "tool_call")) {
          firstAt = performance.now();
          this.waiting--;
          this.running++;
        }
        if (chunk.type === "done") {
          outcome = "ok";
          this.finished(kindNow(), chunk, firstAt);
        } else if (chunk.type === "error") outcome = "error";
        yield chunk;
        observeFirst();
      }
    } catch (error) {
      outcome = "error";
      throw error;
    } finally {
      observeFirst();
      if (firstAt === undefined) this.waiting--;
      else this.running--;
      this.requests.inc({ route: kindNow(), outcome });
    }
  }

  private finished(kind: RouteKind, done: Extract<InferStreamChunk, { type: "done" }>, firstAt: number | undefined) {
    const tokens = done.usage.completionTokens;
    this.completionTokens.inc({ route: kind }, tokens);
    const seconds = firstAt === undefined ? 0 : (performance.now() - firstAt) / 1000;
    // The first token's own time is in time-to-first-token; the rate is over the ones after it.
    if (tokens > 1 && seconds > 0) this.decodeRate.observe({ route: kind }, (tokens - 1) / seconds);
  }
}
