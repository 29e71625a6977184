import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { type EnrollRequest, type RosterChanged } from "@potluck/protocol";
import { coordinatorKeyFingerprint, messageSigningParts, privateKeyFromPem, signRequest } from "@potluck/peer";
import postgres from "postgres";
import { buildCoordinatorApp } from "../src/app.js";
import type { Clock } from "../src/clock.js";
import { openDatabase, type OpenedDatabase } from "../src/db/open.js";
import { loadOrCreateCoordinatorKey } from "../src/signing-key.js";
import { CoordinatorState } from "../src/state.js";

export const postgresBase = process.env.POTLUCK_TEST_POSTGRES ?? "postgres://postgres@127.0.0.1:5432";

/** A fresh database with a random name on the shared server; `drop` removes it (even if still in use). */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `coord_t_${randomBytes(6).toString("hex")}`;
  const admin = postgres(`${postgresBase}/postgres`, { max: 1, onnotice: () => undefined });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  return {
    url: `${postgresBase}/${name}`,
    async drop() {
      const sql = postgres(`${postgresBase}/postgres`, { max: 1, onnotice: () => undefined });
      await sql.unsafe(`drop database if exists ${name} with (force)`);
      await sql.end();
    },
  };
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A random 32-byte key in base64: the shape of WireGuard and Ed25519 public keys. */
export function randomKey(): string {
  return randomBytes(32).toString("base64");
}

export const adminSecret = "test-admin-secret-0123456789";
export const adminHeaders = { "content-type": "application/json", "x-potluck-admin-secret": adminSecret };

/** A coordinator app over a real database, with roster events collected in a list. */
export async function testCoordinator(options: { databaseUrl?: string; dataDir: string; clock?: Clock }): Promise<{
  app: ReturnType<typeof buildCoordinatorApp>;
  state: CoordinatorState;
  database: OpenedDatabase;
  events: RosterChanged[];
  createToken(body?: object): Promise<string>;
  enroll(body: Partial<EnrollRequest> & { token: string; name: string }): Promise<Response>;
}> {
  const database = await openDatabase({ databaseUrl: options.databaseUrl, dataDir: options.dataDir });
  const events: RosterChanged[] = [];
  const signingKey = loadOrCreateCoordinatorKey(options.dataDir);
  const state = await CoordinatorState.open({
    db: database.db,
    clock: options.clock,
    events: { publish: (e) => events.push(e) },
    keyFingerprint: coordinatorKeyFingerprint(signingKey.publicKey),
  });
  const app = buildCoordinatorApp({ startedAt: Date.now(), state, adminSecret, signingKey });
  return {
    app,
    state,
    database,
    events,
    async createToken(body = {}) {
      const res = await app.request("/v1/tokens", {
        method: "POST",
        headers: adminHeaders,
        body: JSON.stringify(body),
      });
      if (res.status !== 201) throw new Error(`token create: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { token: string }).token;
    },
    async enroll(body) {
      const full = {
        owner: "home",
        wireguardPublicKey: randomKey(),
        identityPublicKey: randomKey(),
        endpoints: ["198.18.0.2:51820"],
        ...body,
      };
      return app.request("/v1/enroll", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(full),
      });
    },
  };
}

/**
 * Publishes a heartbeat as a machine does: its payload signed with `privateKeyPem` as machine `signer` (null:
 * unsigned).
 */
export function publishHeartbeat(
  client: NatsConnection,
  subject: string,
  beat: object,
  signer: { machine: string; privateKeyPem: string } | null,
): void {
  const payload = JSON.stringify(beat);
  if (signer === null) return void client.publish(subject, payload);
  const signed = headers();
  for (const [name, value] of Object.entries(
    signRequest(messageSigningParts(subject, payload), {
      machine: signer.machine,
      privateKey: privateKeyFromPem(signer.privateKeyPem),
    }),
  ))
    signed.set(name, value);
  client.publish(subject, payload, { headers: signed });
}
