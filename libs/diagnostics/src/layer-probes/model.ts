import type { ModelInfo } from "@potluck/protocol";
import type { Details } from "../detail.js";
import { capabilitiesCheck, Failure, firstTokenCheck, modelRuntimeCheck } from "../layers.js";
import { ProbeError, ProbeErrorKind } from "../probes.js";
import { describe, isKind, isUnauthorized } from "./errors.js";
import { fail, ok, probeFor, skipped, timeout, type KeysOf, type Step } from "./run.js";

// The layers above the mesh: what the peer serves, whether its model runs, and a first token.

export const capabilitiesProbe = probeFor(
  capabilitiesCheck,
  async (run, learned): Promise<Step<KeysOf<typeof capabilitiesCheck>>> => {
    const signal = timeout(run.limits.capabilitiesTimeoutMs);
    try {
      const selfClient = run.self ? run.probes.self : undefined;
      const { models, peerOs } =
        selfClient !== undefined
          ? { models: await selfClient.models(signal), peerOs: run.os }
          : await run.probes.peer
              .capabilities(learned.target, signal)
              .then((caps) => ({ models: caps.models, peerOs: caps.hardware.platform }));
      return { outcome: ok, detail: { models: String(models.length) }, learned: { models, peerOs } };
    } catch (error) {
      return {
        outcome: fail(isUnauthorized(error) ? Failure.unauthorized : Failure.badResponse),
        detail: { error: describe(error) },
      };
    }
  },
);

export const modelRuntimeProbe = probeFor(
  modelRuntimeCheck,
  async (run, learned): Promise<Step<KeysOf<typeof modelRuntimeCheck>>> => {
    const models = learned.models ?? [];
    const wanted = run.requestedModel;
    const chosen: ModelInfo | undefined =
      wanted !== undefined
        ? models.find((m) => m.id === wanted)
        : (models.find((m) => m.state === "ready") ?? models[0]);
    const detail: Details<(typeof modelRuntimeCheck.detailKeys)[number]> = {
      available: models.map((m) => `${m.id} (${m.state})`).join(", "),
    };
    // The model asked for is named even when the peer lacks it, so the failure says which.
    const model = wanted ?? chosen?.id;
    const learnedModel = model === undefined ? {} : { model };
    if (chosen === undefined) return { outcome: fail(Failure.noModel), detail, learned: learnedModel };
    if (chosen.state === "loading") {
      if (chosen.progress !== undefined) detail.progress = `${Math.round(chosen.progress * 100)}%`;
      return { outcome: fail(Failure.modelLoading), detail, learned: learnedModel };
    }
    if (chosen.state === "failed") {
      if (chosen.reason !== undefined) detail.reason = chosen.reason;
      return { outcome: fail(Failure.modelFailed), detail, learned: learnedModel };
    }
    return { outcome: ok, detail, learned: learnedModel };
  },
);

export const firstTokenProbe = probeFor(
  firstTokenCheck,
  async (run, learned): Promise<Step<KeysOf<typeof firstTokenCheck>>> => {
    const recent = run.recentFirstToken;
    if (recent !== undefined)
      return {
        outcome: ok,
        detail: { servedBy: recent.servedBy, reusedAgeS: String(Math.round(recent.ageMs / 1000)) },
      };
    const model = learned.model ?? "";
    const state = learned.models?.find((m) => m.id === model)?.state;
    if (!run.loadModels && state === "available")
      return {
        outcome: skipped(
          `${model} is available on ${run.path.peer} but not loaded; a prompt loads it first (this check does not, so looking never keeps a model in memory)`,
        ),
      };
    const started = run.clock.now();
    try {
      const selfClient = run.self ? run.probes.self : undefined;
      const signal = timeout(run.limits.firstTokenTimeoutMs);
      const token =
        selfClient !== undefined
          ? await selfClient.firstToken(model, signal)
          : await run.probes.peer.firstToken(learned.target, model, signal);
      return {
        outcome: ok,
        detail: { servedBy: token.servedBy, firstTokenMs: String(Math.round(run.clock.now() - started)) },
      };
    } catch (error) {
      const detail = { error: describe(error) };
      if (error instanceof ProbeError && error.http?.status === 503)
        return { outcome: fail(Failure.modelLoading), detail };
      return {
        outcome: fail(isKind(error, ProbeErrorKind.timeout) ? Failure.generationTimeout : Failure.generationFailed),
        detail,
      };
    }
  },
);
