import type { LayerCode } from "@potluck/protocol";
import type { Details } from "../detail.js";
import { dataPlaneCheck, Failure } from "../layers.js";
import { ProbeErrorKind } from "../probes.js";
import { describe, isUnauthorized, kindOf } from "./errors.js";
import { fail, ok, probeFor, skipped, timeout, type KeysOf, type Learned, type Run, type Step } from "./run.js";
import { classifyTimeout, type Classified, type DataPlaneKey } from "./timeout.js";

/**
 * A tiny probe, then one too big for a single mesh packet: passing the first and losing the second is an MTU black
 * hole.
 */
export const dataPlaneProbe = probeFor(
  dataPlaneCheck,
  async (run, learned): Promise<Step<KeysOf<typeof dataPlaneCheck>>> => {
    if (run.self) return { outcome: skipped("this machine: no mesh hop") };
    const { clock, limits } = run;
    const peer = run.probes.peer;
    let detail: Details<DataPlaneKey> = {};
    const sentAt = clock.now();
    try {
      await peer.probe(learned.target, limits.smallProbeBytes, timeout(limits.smallProbeTimeoutMs));
    } catch (error) {
      // Classifying a timeout takes seconds; a fault that cleared meanwhile is not reported.
      const classified = await classify(run, learned, error, false, sentAt);
      detail = { error: describe(error), ...classified.detail };
      const { outcome } = classified;
      if (outcome === "cleared") {
        // The path answered again: go on to the large probe.
      } else if (
        outcome.kind === "fail" &&
        outcome.layer === undefined &&
        (await heldUntilVisible(run, learned, "data-plane"))
      ) {
        // Cleared while the failure was being held to its time-to-visible.
      } else {
        return { outcome, detail };
      }
    }
    try {
      await peer.probe(learned.target, limits.largeProbeBytes, timeout(limits.largeProbeTimeoutMs));
    } catch (error) {
      const classified = await classify(run, learned, error, true, clock.now());
      // A lost large probe is an MTU black hole, never "cleared": only small-probe timeouts are rechecked.
      const outcome = classified.outcome === "cleared" ? fail(Failure.mtuBlackhole) : classified.outcome;
      return { outcome, detail: { ...detail, error: describe(error), ...classified.detail } };
    }
    return { outcome: ok, detail };
  },
);

/** Names a failed probe by how it failed; only a small probe's timeout needs the evidence of classifyTimeout. */
async function classify(
  run: Run,
  learned: Learned,
  error: unknown,
  large: boolean,
  sentAt: number,
): Promise<Classified> {
  const kind = kindOf(error);
  const named = (failure: Failure): Classified => ({ outcome: fail(failure), detail: {} });
  if (large && (kind === ProbeErrorKind.timeout || kind === ProbeErrorKind.reset)) return named(Failure.mtuBlackhole);
  switch (kind) {
    case ProbeErrorKind.refused:
      return named(Failure.connectionRefused);
    case ProbeErrorKind.timeout:
      return classifyTimeout(run, learned, sentAt);
    case ProbeErrorKind.http:
      return named(isUnauthorized(error) ? Failure.unauthorized : Failure.peerError);
    case ProbeErrorKind.unreachable:
      return named(Failure.unreachable);
    default:
      return named(Failure.peerError);
  }
}

/**
 * A failure is shown once it has lasted its layer's time-to-visible, but only a check can show it:
 * without this, a failure that becomes visible mid-way between two checks is named a whole check
 * later (a small-probe timeout plus the caller's interval). When the streak this failure continues
 * turns visible within `confirmHoldMs`, keep rechecking the path until that moment and report then.
 * Resolves true when the path answered meanwhile (the fault cleared: nothing to report).
 */
async function heldUntilVisible(run: Run, learned: Learned, layer: LayerCode): Promise<boolean> {
  const visibleAt = run.visibleAt(layer);
  if (visibleAt === undefined) return false;
  const { clock, limits } = run;
  const waitMs = visibleAt - clock.now();
  if (waitMs <= 0 || waitMs > limits.confirmHoldMs) return false;
  // One small probe per poll interval, none outliving the hold: bounded by confirmHoldMs.
  while (clock.now() < visibleAt) {
    const attemptAt = clock.now();
    try {
      await run.probes.peer.probe(
        learned.target,
        limits.smallProbeBytes,
        timeout(Math.max(1, Math.min(limits.smallProbeTimeoutMs, visibleAt - attemptAt))),
      );
      return true;
    } catch {
      const restMs = Math.min(limits.livePollMs - (clock.now() - attemptAt), visibleAt - clock.now());
      if (restMs > 0) await clock.sleep(restMs);
    }
  }
  return false;
}
