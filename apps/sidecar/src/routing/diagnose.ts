import type { DiagnosticsReport, LayerCode } from "@potluck/protocol";

/** What diagnostics found on the path to one candidate: the layer that stops it, why, and the fix. */
export interface Diagnosis {
  layer: LayerCode;
  reason: string;
}

/** Asked only after the router's own probe failed, so a healthy route never pays for a full check. */
export type Diagnose = (peer: string, model: string) => Promise<Diagnosis | undefined>;

/** The part of the diagnostics service the router needs. */
export interface PathChecker {
  check(peer: string, options: { forceFresh?: boolean; model?: string }): Promise<DiagnosticsReport>;
}

/**
 * A failed data plane costs diagnostics a probe timeout plus its wait for a keepalive (≈ 11 s) to
 * tell a firewall from a powered-off peer; past this the router keeps its own, vaguer reason.
 */
export const diagnoseTimeoutMsDefault = 25_000;

/**
 * Names the failing layer the way `potluck doctor` does: a fresh check of the exact path, bounded
 * in time. A layer still inside its time-to-visible counts too (marked "confirming"): a prompt
 * that fails now deserves the best explanation now, not after the failure has persisted.
 */
export function diagnoseWith(checker: PathChecker, timeoutMs: number = diagnoseTimeoutMsDefault): Diagnose {
  return async (peer, model) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    try {
      const report = await Promise.race([checker.check(peer, { forceFresh: true, model }), timeout]);
      if (report === undefined) return undefined;
      const layer =
        report.layers.find((l) => l.status === "failed") ?? report.layers.find((l) => l.status === "pending");
      if (layer === undefined) return undefined;
      const confirming = layer.status === "pending" ? ", confirming" : "";
      const fix = layer.fix === undefined ? "" : ` Fix: ${layer.fix}`;
      return {
        layer: layer.code,
        reason: `${layer.failure ?? "failed"}${confirming}: ${stripConfirming(layer.message)}.${fix}`,
      };
    } catch {
      // Diagnostics failing must never hide the router's own reason.
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };
}

/** A pending layer's message starts with "possible X, confirming (n of m s): "; the caller says so itself. */
function stripConfirming(message: string): string {
  return message.replace(/^possible [^,]+, confirming \([^)]*\): /, "").replace(/\.$/, "");
}
