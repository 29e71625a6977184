import type { LayerCode } from "@potluck/protocol";
import type { Check, CheckRegistry } from "../checks.js";
import type { Details } from "../detail.js";
import { coordinatorProbe, localSidecarProbe, rosterProbe } from "./control-plane.js";
import { dataPlaneProbe } from "./data-plane.js";
import { capabilitiesProbe, firstTokenProbe, modelRuntimeProbe } from "./model.js";
import type { LayerProbe, Learned, Run, Step } from "./run.js";
import { pathProbe, tunnelProbe } from "./tunnel.js";

/** The probe of every layer Potluck registers (see `layerChecks`). */
export const layerProbes: readonly LayerProbe[] = [
  localSidecarProbe,
  coordinatorProbe,
  rosterProbe,
  tunnelProbe,
  pathProbe,
  dataPlaneProbe,
  capabilitiesProbe,
  modelRuntimeProbe,
  firstTokenProbe,
];

export class DuplicateProbeError extends Error {
  override name = "DuplicateProbeError";
}

/** A registered check without a probe, or a probe without a registered check. */
export class UnmatchedProbeError extends Error {
  override name = "UnmatchedProbeError";
}

/**
 * Exactly one probe per registered check, proven when the table is built: a check without a probe
 * would be reported as if it passed, and a second probe for a check would silently win or lose.
 */
export class ProbeTable {
  readonly #probes = new Map<LayerCode, LayerProbe>();

  constructor(
    readonly registry: CheckRegistry,
    probes: readonly LayerProbe[] = layerProbes,
  ) {
    for (const probe of probes) {
      if (this.#probes.has(probe.code)) throw new DuplicateProbeError(`check ${probe.code} has more than one probe`);
      this.#probes.set(probe.code, probe);
    }
    const registered = new Set(registry.ordered().map((check) => check.code));
    for (const code of registered) {
      if (!this.#probes.has(code)) throw new UnmatchedProbeError(`check ${code} is registered but has no probe`);
    }
    for (const code of this.#probes.keys()) {
      if (!registered.has(code))
        throw new UnmatchedProbeError(`a probe is given for ${code}, which is not a registered check`);
    }
  }

  /** Runs `check`'s probe. A probe recording a detail key its check does not declare is a programmer error. */
  async probe(check: Check, run: Run, learned: Learned): Promise<Step> {
    const step = await this.#get(check.code).probe(run, learned);
    assertDeclared(check, step.detail);
    return step;
  }

  #get(code: LayerCode): LayerProbe {
    const probe = this.#probes.get(code);
    if (probe === undefined) throw new UnmatchedProbeError(`check ${code} has no probe`);
    return probe;
  }
}

function assertDeclared(check: Check, detail: Details | undefined): void {
  if (detail === undefined) return;
  const declared: readonly string[] = check.detailKeys;
  for (const key of Object.keys(detail)) {
    if (!declared.includes(key))
      throw new Error(`the probe of ${check.code} recorded ${key}, which the check does not declare`);
  }
}
