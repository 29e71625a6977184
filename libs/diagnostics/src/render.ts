import type { DiagnosticsReport, LayerResult, LayerStatus } from "@potluck/protocol";

/** One glyph per status so a report reads at a glance in a terminal without colour. */
const mark: Record<LayerStatus, string> = {
  ok: "ok  ",
  warning: "warn",
  pending: "wait",
  failed: "FAIL",
  suppressed: " -- ",
  skipped: "skip",
};

/** The readable per-layer report `potluck doctor` prints. */
export function renderReport(report: DiagnosticsReport): string {
  const target =
    report.peer === null || report.peer === report.from
      ? `${report.from} (this machine)`
      : `${report.from} → ${report.peer}`;
  const verdict = report.usable
    ? "can serve a prompt"
    : report.firstFailure !== null
      ? `cannot serve a prompt: ${report.firstFailure} failed`
      : "cannot serve a prompt yet (a failure is being confirmed)";
  const lines = [`${target}${report.model !== undefined ? ` [${report.model}]` : ""}: ${verdict}`];
  for (const layer of report.layers) lines.push(...renderLayer(layer));
  return `${lines.join("\n")}\n`;
}

function renderLayer(layer: LayerResult): string[] {
  const lines = [`  [${mark[layer.status]}] ${layer.title.padEnd(16)} ${layer.message}`];
  if (
    layer.fix !== undefined &&
    (layer.status === "failed" || layer.status === "pending" || layer.status === "warning")
  ) {
    lines.push(`         fix: ${layer.fix}`);
    if (layer.offerFix === "fw-reapply")
      lines.push("         (potluck doctor --fix can ask the fw-watcher to reapply the rules, with your consent)");
  }
  return lines;
}
