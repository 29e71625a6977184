import type { RosterEntry } from "@potluck/protocol";
import { coordinatorCheck, Failure, localSidecarCheck, rosterCheck } from "../layers.js";
import { ProbeErrorKind } from "../probes.js";
import { describe, isKind } from "./errors.js";
import { fail, ok, probeFor, skipped, timeout, type KeysOf, type Step } from "./run.js";

// The layers before the mesh: this machine's sidecar, the coordinator and the roster it serves.

export const localSidecarProbe = probeFor(
  localSidecarCheck,
  async (run): Promise<Step<KeysOf<typeof localSidecarCheck>>> => {
    try {
      const health = await run.probes.local.health(timeout(run.limits.localTimeoutMs));
      return { outcome: ok, detail: { health: health.status } };
    } catch (error) {
      return {
        outcome: fail(isKind(error, ProbeErrorKind.refused) ? Failure.sidecarDown : Failure.sidecarUnresponsive),
        detail: { error: describe(error) },
      };
    }
  },
);

export const coordinatorProbe = probeFor(
  coordinatorCheck,
  async (run): Promise<Step<KeysOf<typeof coordinatorCheck>>> => {
    const coordinator = run.probes.coordinator;
    if (coordinator === undefined)
      return { outcome: skipped("no coordinator configured (POTLUCK_COORDINATOR_URL is unset): single-machine mode") };
    try {
      await coordinator.health(timeout(run.limits.coordinatorTimeoutMs));
      return { outcome: ok };
    } catch (error) {
      return { outcome: fail(Failure.coordinatorUnreachable), detail: { error: describe(error) } };
    }
  },
);

export const rosterProbe = probeFor(rosterCheck, async (run, learned): Promise<Step<KeysOf<typeof rosterCheck>>> => {
  const roster = run.probes.roster;
  const { peer } = run.path;
  if (roster === undefined) {
    return {
      outcome: run.self ? skipped("no roster: this machine has not joined a mesh") : fail(Failure.rosterUnavailable),
    };
  }
  let entry: RosterEntry | null;
  try {
    entry = await roster.lookup(peer, timeout(run.limits.coordinatorTimeoutMs));
  } catch (error) {
    return { outcome: fail(Failure.rosterUnavailable), detail: { error: describe(error) } };
  }
  if (entry === null)
    return {
      outcome: run.self ? skipped(`${peer} (this machine) is not in the roster yet`) : fail(Failure.unknownMachine),
    };
  return {
    outcome: entry.staleKey ? fail(Failure.staleKey) : ok,
    detail: { rosterKey: entry.wireguardPublicKey, rosterState: entry.state },
    // A peer is reached at its mesh IP from here on; this machine's own path stays on loopback.
    learned: { entry, target: run.self ? learned.target : { ...learned.target, host: entry.meshIp } },
  };
});
