import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileAnchor } from "../src/anchors/file-anchor.js";
import { drainOutbox, outboxCounts } from "../src/anchors/outbox.js";
import { Witness, WitnessAnchor } from "../src/anchors/witness.js";
import { buildLedgerApp } from "../src/app.js";
import type { Ledger } from "../src/ledger/service.js";
import { verifyProofBundle, signCheckpoint, generateSigner, NoteAlg, parseVerifierKey } from "@potluck/ledger-proof";
import { ev, testLedger } from "./helpers/ledger.js";

describe("anchors", () => {
  const dir = mkdtempSync(join(tmpdir(), "ledger-anchor-"));
  const witnessKey = generateSigner("witness.test", NoteAlg.cosignatureV1);
  let t: Awaited<ReturnType<typeof testLedger>>;
  let ledger: Ledger;
  let server: ServerType | undefined;
  let witnessUrl = "";
  let witness: Witness;

  const startWitness = async (port = 0) =>
    new Promise<number>((resolve) => {
      const app = buildLedgerApp({ startedAt: Date.now(), ledger, witness });
      server = serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, (info) => resolve(info.port));
    });
  const stopWitness = async () =>
    new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));

  beforeAll(async () => {
    // The witness URL must be known before the ledger exists: reserve a port by listening once.
    t = await testLedger();
    witness = new Witness(parseVerifierKey(t.ledger.publicKey), witnessKey, undefined, join(dir, "witness-state.json"));
    ledger = t.ledger;
    const port = await startWitness();
    witnessUrl = `http://127.0.0.1:${port}/v1/witness/add-checkpoint`;
    await stopWitness();
    const anchors = [
      new FileAnchor(join(dir, "checkpoints.jsonl")),
      new WitnessAnchor(witnessUrl, parseVerifierKey(witnessKey.vkey), (a, b) => ledger.log.consistency(a, b), 2_000),
    ];
    const { Ledger: LedgerClass } = await import("../src/ledger/service.js");
    ledger = new LedgerClass(t.opened.db, t.ledger.signer, t.ledger.origin, anchors);
  });
  afterAll(async () => {
    await stopWitness();
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("an anchor outage delays anchoring and never stops metering", async () => {
    await ledger.append([ev({ kind: "adjust", eventId: "a1", account: "ann", delta: 100, reason: "grant" })]);
    await ledger.checkpoint();
    const first = await drainOutbox(ledger.db, ledger.anchors);
    expect(first).toEqual({ published: 1, failed: 1 });
    // Metering goes on while the witness is down, and so do checkpoints.
    const out = await ledger.append([
      ev({ kind: "spend", eventId: "a2", account: "ann", payee: "peer", amount: 30 }),
      ev({ kind: "adjust", eventId: "a3", account: "bob", delta: 5, reason: "grant" }),
    ]);
    expect(out.every((o) => o.status === "applied")).toBe(true);
    await ledger.snapshot();
    // The new checkpoint goes to the file and fails at the witness once; the first failed row is
    // backed off, so this round does not retry it (one failure, not two).
    expect(await drainOutbox(ledger.db, ledger.anchors)).toEqual({ published: 1, failed: 1 });
    expect((await outboxCounts(ledger.db)).pending).toBe(2);
  });

  it("once the witness is back, pending checkpoints are cosigned in order with consistency proofs", async () => {
    await startWitness(Number(new URL(witnessUrl).port));
    const later = Date.now() + 3_600_000;
    const result = await drainOutbox(ledger.db, ledger.anchors, later);
    expect(result).toEqual({ published: 2, failed: 0 });
    expect(await outboxCounts(ledger.db)).toEqual({ done: 4 });
    const bundle = await ledger.proofBundle("ann");
    expect(bundle?.anchors.map((a) => a.kind).sort()).toEqual(["file", "witness"]);
    const verdict = verifyProofBundle(bundle, ledger.publicKey, [witnessKey.vkey]);
    expect(verdict.balance).toBe(70);
    expect(verdict.anchors.map((a) => a.status)).toEqual(["verified", "verified"]);
    for (const anchor of ledger.anchors) {
      const cp = await ledger.latestCheckpoint();
      const receipt = bundle?.anchors.find((a) => a.kind === anchor.kind)?.receipt ?? "";
      await anchor.verify(cp ?? { size: 0, root: "", note: "" }, receipt);
    }
  });

  it("the witness refuses a checkpoint that rewrites what it already cosigned", async () => {
    const cp = await ledger.latestCheckpoint();
    const forged = signCheckpoint(
      { origin: ledger.origin, size: (cp?.size ?? 0) + 1, root: Buffer.alloc(32, 9) },
      ledger.signer,
    );
    const res = await fetch(witnessUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ oldSize: cp?.size, proof: ["ab".repeat(32)], checkpoint: forged }),
    });
    expect(res.status).toBe(422);
    const stale = await fetch(witnessUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ oldSize: 1, proof: [], checkpoint: forged }),
    });
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { knownSize: number }).knownSize).toBe(cp?.size);
    // A restarted witness remembers what it cosigned.
    const restarted = new Witness(
      parseVerifierKey(ledger.publicKey),
      witnessKey,
      undefined,
      join(dir, "witness-state.json"),
    );
    expect(() => restarted.addCheckpoint(0, [], forged)).toThrow(/last saw size/);
  });
});
