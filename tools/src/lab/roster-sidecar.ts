import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateIdentity } from "@potluck/peer";
import type { Roster } from "@potluck/protocol";
import { repoRoot, serviceEntry } from "../lib/repo.js";
import { labRosterEntry } from "./roster.js";
import { pollUntil } from "./run.js";
import type { LabHost, LabProcess } from "./types.js";

/**
 * A household without a hub, for tests and benches that do not need a coordinator: each host gets
 * an identity key in its data dir and every host the same static roster file naming them all, as
 * a coordinator would list them. The sidecars then sign and verify peer calls for real.
 */

/** The sidecar's port in these labs (the default, so `potluck` in a host finds it). */
export const rosterSidecarPort = 8321;
/** tsx and a tiny model on a loaded 2-core machine can take minutes to come up. */
export const sidecarReadyMs = 180_000;

/** A host's sidecar data dir: its identity key and memory store. */
export const labSidecarDataDir = (host: LabHost): string => join(host.runDir, "potluck");
/** A host's static roster file. */
export const labRosterFile = (host: LabHost): string => join(host.runDir, "roster.json");

export interface Identity {
  privateKeyPem: string;
  publicKey: string;
}

export interface SeededHousehold {
  /** Each host's identity, by host name. */
  identities: Map<string, Identity>;
  /** The roster every host was given. */
  roster: Roster;
}

/** Writes a fresh identity into each host's data dir and one roster naming them all. */
export function seedRosterHousehold(hosts: readonly LabHost[], owner = "home"): SeededHousehold {
  const identities = new Map(hosts.map((h) => [h.name, generateIdentity()]));
  const roster: Roster = {
    version: 1,
    machines: hosts.map((h) => labRosterEntry(h, identities.get(h.name)?.publicKey ?? "", owner)),
  };
  for (const host of hosts) {
    const dir = labSidecarDataDir(host);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pem = join(dir, "identity-ed25519.pem");
    writeFileSync(pem, identities.get(host.name)?.privateKeyPem ?? "", { mode: 0o600 });
    // The mode above applies only when the file is new.
    chmodSync(pem, 0o600);
    writeFileSync(labRosterFile(host), JSON.stringify(roster));
  }
  return { identities, roster };
}

/**
 * Starts a sidecar on `host` against the static roster seeded above (owner "home", one model
 * thread, a NATS subject root of its own so runs never share usage subjects); `env` goes on top.
 * Resolves once it answers /health.
 */
export async function startRosterSidecar(
  host: LabHost,
  env: NodeJS.ProcessEnv = {},
  port = rosterSidecarPort,
): Promise<LabProcess> {
  const proc = host.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
    cwd: repoRoot,
    env: {
      POTLUCK_MACHINE: host.name,
      POTLUCK_OWNER: "home",
      POTLUCK_DATA_DIR: labSidecarDataDir(host),
      POTLUCK_ROSTER_FILE: labRosterFile(host),
      POTLUCK_PORT: String(port),
      POTLUCK_THREADS: "1",
      POTLUCK_NATS_PREFIX: `t${randomBytes(5).toString("hex")}`,
      ...env,
    },
  });
  await waitSidecarHealthy(host, port, proc);
  return proc;
}

/** Until the sidecar on `host`:`port` answers /health ok; throws with the process's output if it never does. */
export async function waitSidecarHealthy(
  host: LabHost,
  port: number,
  proc: LabProcess,
  timeoutMs = sidecarReadyMs,
): Promise<void> {
  const ready = await pollUntil(
    async () =>
      (await host.exec(["curl", "-sf", `http://127.0.0.1:${port}/health`], { timeoutMs: 5_000 })).stdout.includes(
        '"ok"',
      ),
    { timeoutMs, intervalMs: 500 },
  );
  if (!ready)
    throw new Error(`sidecar on ${host.name} not ready within ${timeoutMs / 1000} s: ${proc.output().slice(-2000)}`);
}
