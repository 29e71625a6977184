import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { enrollLockKey } from "@potluck/coordinator";
import { publicKeyToBase64, signRequest } from "@potluck/peer";
import { CoordinatorLimits } from "@potluck/protocol";
import postgres from "postgres";
import type { SimMachine } from "./sim-machines.js";

/**
 * Simulated machines written straight into a coordinator's database, for benches that measure
 * something other than enrollment (heartbeat fan-in). Every enrollment answers with the whole
 * roster, so enrolling N machines one by one costs O(N²) and 10,000 take tens of minutes;
 * this writes the rows an enrollment writes (same columns, a real Ed25519 identity key each
 * machine then signs with, mesh addresses above every one in use) in one transaction that bumps the
 * roster version once, as one enrollment would. Coordinators pick the rows up on their next
 * roster read (CoordinatorState.sync: the version moved, so the table is reloaded). No join
 * tokens are spent and no roster change is announced on NATS.
 */
export async function seedSimMachines(
  databaseUrl: string,
  specs: ReadonlyArray<{ name: string; owner: string }>,
): Promise<SimMachine[]> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => undefined });
  try {
    const machines = specs.map((spec) => {
      const { publicKey, privateKey } = generateKeyPairSync("ed25519");
      const row = {
        id: randomUUID(),
        name: spec.name,
        owner: spec.owner,
        wireguard_public_key: randomBytes(32).toString("base64"),
        identity_public_key: publicKeyToBase64(publicKey),
        endpoints: sql.json([]),
        enrolled_at: new Date(),
      };
      const machine: SimMachine = {
        name: spec.name,
        owner: spec.owner,
        wireguardPublicKey: row.wireguard_public_key,
        sign: (parts) => signRequest(parts, { machine: spec.name, privateKey }),
      };
      return { row, machine };
    });
    await sql.begin(async (tx) => {
      // Serial with real enrollments on any coordinator of this database (they take the same lock).
      await tx`select pg_advisory_xact_lock(${enrollLockKey})`;
      const [held] = await tx<Array<{ n: number; top: number }>>`
        select count(*)::int as n, coalesce(max(mesh_index), 0)::int as top from machines`;
      const { n, top } = held ?? { n: 0, top: 0 };
      if (n + machines.length > CoordinatorLimits.rosterMachinesMax)
        throw new Error(
          `seeding ${machines.length} machines: the roster holds ${n} and lists at most ${CoordinatorLimits.rosterMachinesMax}`,
        );
      // Above every address in use, so the seeded block is contiguous; enrollment fills gaps lowest first.
      const rows = machines.map(({ row }, i) => ({ ...row, mesh_index: top + 1 + i }));
      for (let i = 0; i < rows.length; i += insertBatchMax)
        await tx`insert into machines ${tx(rows.slice(i, i + insertBatchMax))}`;
      const bumped = await tx`update roster_version set version = version + 1 where id = 1 returning version`;
      if (bumped.length !== 1) throw new Error("seeding: roster_version row missing; migrations were not applied");
    });
    return machines.map(({ machine }) => machine);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Rows per INSERT: 8 parameters each, far below PostgreSQL's 65,535 parameters per statement. */
const insertBatchMax = 1_000;
