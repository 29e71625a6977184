import type { FwCheckReport } from "@potluck/protocol";
import type { Firewall } from "./firewall.js";
import type { WatchLog } from "./watcher.js";

/** Exit codes of the one-shot modes, as documented in --help. */
export const ExitCode = { ok: 0, missing: 1, error: 2 } as const;

const noVpnMessage = "no VPN firewall found (no ip filter ts-input, no inet mullvad); nothing to do";

export async function runInstall(firewall: Firewall, log: WatchLog): Promise<number> {
  const { before, added, removed } = await firewall.install();
  if (!before.vpns.tailscale && !before.vpns.mullvad) log.info({ vpns: before.vpns }, noVpnMessage);
  else
    log.info(
      { vpns: before.vpns, added, removed, interfaceName: firewall.interfaceName },
      added > 0 ? "accept rule(s) installed" : "accept rule(s) already present",
    );
  return ExitCode.ok;
}

export async function runUninstall(firewall: Firewall, log: WatchLog): Promise<number> {
  const removed = await firewall.uninstall();
  log.info(
    { removed, interfaceName: firewall.interfaceName },
    removed > 0 ? "accept rule(s) removed" : "no potluck accept rules to remove",
  );
  return ExitCode.ok;
}

/** Prints the report (JSON or a readable table) and answers with the documented exit code. */
export async function runCheck(firewall: Firewall, json: boolean, write: (text: string) => void): Promise<number> {
  const { report } = await firewall.read();
  write(json ? `${JSON.stringify(report)}\n` : formatReport(report));
  return report.intact ? ExitCode.ok : ExitCode.missing;
}

export function formatReport(report: FwCheckReport): string {
  const lines = report.rules.map(
    (r) =>
      `  ${r.state.padEnd(15)} ${`${r.family} ${r.table} ${r.chain}`.padEnd(22)} ${r.rule}${r.detail === undefined ? "" : `  (${r.detail})`}`,
  );
  const vpns = Object.entries(report.vpns)
    .filter(([, present]) => present)
    .map(([name]) => name);
  const head =
    vpns.length === 0
      ? `${noVpnMessage}\n`
      : `VPN firewalls: ${vpns.join(", ")}; ${report.intact ? "all accept rules present" : "accept rule(s) missing"}\n`;
  return `${head}${lines.join("\n")}\n`;
}

/** One of the one-shot modes (--install, --check, --uninstall); the exit code, never a throw. */
export async function runOneShot(
  firewall: Firewall,
  { mode, json }: { mode: "install" | "check" | "uninstall"; json: boolean },
  log: WatchLog,
): Promise<number> {
  try {
    if (mode === "install") return await runInstall(firewall, log);
    if (mode === "uninstall") return await runUninstall(firewall, log);
    return await runCheck(firewall, json, (text) => process.stdout.write(text));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log.error({ err: message, mode }, `${mode} failed`);
    process.stderr.write(`potluck-fw-watcher: ${message}\n`);
    return ExitCode.error;
  }
}
