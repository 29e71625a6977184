import { resolveDataDir } from "@potluck/service";
import type { RosterEntry } from "@potluck/protocol";
import { coordinatorClient, CoordinatorError, latestHandshakes, readMeshState, runCommand } from "@potluck/mesh";
import { CliError, type Command } from "../command.js";

const usage = `Usage: potluck peers [--coordinator URL] [--data-dir DIR] [--json]

Lists the roster as this machine sees it: every machine with its mesh address, state (online,
offline, never seen), last heartbeat, and this machine's latest WireGuard handshake with it. A
machine whose tunnel key differs from the roster is marked "stale WireGuard key". The
coordinator is the one this data dir joined, else --coordinator or POTLUCK_COORDINATOR_URL.`;

export const peersCommand: Command = {
  name: "peers",
  summary: "list the mesh roster from this machine's view",
  usage,
  flags: { strings: ["coordinator", "data-dir"], booleans: ["json"], positionals: false },
  async run(_argv, { flags }) {
    const dataDir = resolveDataDir(flags.get("data-dir"));
    const state = readMeshState(dataDir);
    const url = flags.get("coordinator") ?? state?.coordinatorUrl ?? process.env.POTLUCK_COORDINATOR_URL;
    if (url === undefined)
      throw new CliError(
        `this machine has not joined a mesh (no ${dataDir}/mesh/state.json); pass --coordinator URL or run potluck join`,
      );
    const roster = await coordinatorClient(url)
      .roster()
      .catch((error: unknown) => {
        throw new CliError(error instanceof CoordinatorError || error instanceof Error ? error.message : String(error));
      });
    const handshakes = state === undefined ? null : await latestHandshakes(runCommand, state.interfaceName);
    const nowS = Date.now() / 1000;
    const rows = roster.machines.map((m) => ({
      ...m,
      self: m.id === state?.machineId,
      handshakeAgeS: handshakeAge(handshakes, m, nowS),
    }));
    if (flags.has("json")) {
      process.stdout.write(
        `${JSON.stringify({ version: roster.version, self: state?.name ?? null, machines: rows })}\n`,
      );
      return 0;
    }
    const table = [["NAME", "OWNER", "MESH IP", "STATE", "LAST HEARTBEAT", "HANDSHAKE", "NOTES"]];
    for (const r of rows) {
      const notes = [r.self ? "this machine" : "", r.staleKey ? "stale WireGuard key in the coordinator" : ""]
        .filter(Boolean)
        .join("; ");
      table.push([
        r.name,
        r.owner,
        r.meshIp,
        r.state.replace("_", " "),
        r.lastHeartbeatAt ?? "-",
        r.self ? "-" : r.handshakeAgeS === null ? "none" : `${Math.round(r.handshakeAgeS)} s ago`,
        notes,
      ]);
    }
    const widths = table[0]?.map((_, i) => Math.max(...table.map((row) => (row[i] ?? "").length))) ?? [];
    for (const row of table)
      process.stdout.write(
        `${row
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join("  ")
          .trimEnd()}\n`,
      );
    return 0;
  },
};

function handshakeAge(handshakes: Map<string, number> | null, machine: RosterEntry, nowS: number): number | null {
  const epoch = handshakes?.get(machine.wireguardPublicKey);
  return epoch === undefined || epoch === 0 ? null : Math.max(0, nowS - epoch);
}
