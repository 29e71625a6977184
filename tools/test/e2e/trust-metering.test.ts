import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { verifyProofBundle } from "@potluck/ledger-proof";
import type { LedgerEntry } from "@potluck/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { householdModel as model } from "../../src/demo/household-lab.js";
import {
  createLab,
  pollUntil,
  startHub,
  waitForOutput,
  type Hub,
  type Lab,
  type LabHost,
  type LabProcess,
  startHubSidecar,
} from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";

// The honest path of a job between owners, end to end over the lab: a hub (NATS with JetStream,
// the coordinator, the ledger on embedded PGlite reading the roster), "mac" of the hub's own
// household and "eve" of another owner who joined with the token the hub's admin made for her.
// Both run the real sidecar with the generated TEST model. A prompt on mac pinned to eve, and one
// on eve pinned to mac, each produce exactly one hold (signed by the requester's machine) and one
// settlement (signed by the server's) in the ledger, through JetStream, priced at the size the
// server published; both owners' balances agree with the entries and with their signed proofs.
const sidecarPort = 8321;
const ledgerPort = 8330;
const writeToken = randomBytes(24).toString("hex");
/** Several node processes per host on a loaded 2-core machine. */
const upMs = 300_000;
const grant = 5_000_000;
const maxTokens = 64;

let lab: Lab;
let hub: Hub;
let ledger: LabProcess;
const owners: Record<string, string> = {};
const sidecars: Record<string, LabProcess> = {};

beforeAll(async () => {
  lab = await createLab({ hosts: ["mac", "eve"], mesh: false, extraHosts: ["hub"] });
  hub = await startHub(lab);
  await hub.join(lab.host("mac"));
  await hub.join(lab.host("eve"), "eve", { owner: "eve" });
  for (const m of (await hub.roster()).machines) owners[m.name] = m.owner;
  expect(owners.eve).toBe("eve");
  expect(owners.mac).not.toBe("eve");
  ledger = hub.host.spawn("ledger", [process.execPath, "--import", "tsx", serviceEntry.ledger], {
    cwd: repoRoot,
    env: hub.env({
      POTLUCK_DATA_DIR: join(hub.host.runDir, "ledger"),
      POTLUCK_LEDGER_PORT: String(ledgerPort),
      POTLUCK_NATS_URL: hub.natsUrl.replace(hub.host.underlayIp, "127.0.0.1"),
      POTLUCK_COORDINATOR_URL: "http://127.0.0.1:8320",
      POTLUCK_COORDINATOR_KEY: hub.signingKey(),
      POTLUCK_LEDGER_WRITE_TOKEN: writeToken,
      POTLUCK_LEDGER_ANCHOR_FILE: "off",
    }),
  });
  await waitForOutput(ledger, /ledger ingesting usage events/, "starting the ledger", upMs);
  await Promise.all([startSidecar(lab.host("mac")), startSidecar(lab.host("eve"))]);
  await hub.waitOnline(["mac", "eve"], upMs);
  // Each machine loads its model with a prompt of its own (not metered), so the probe before a
  // job between owners publishes the model's size, and the hold is priced at it.
  for (const host of [lab.host("mac"), lab.host("eve")]) expect((await ask(host, host.name)).served_by).toBe(host.name);
  // The operator's grants: the only credits there will ever be.
  for (const account of [owners.mac!, owners.eve!])
    await hub.grant(`http://127.0.0.1:${ledgerPort}`, account, grant, `grant-${account}`);
}, 20 * 60_000);

afterAll(async () => {
  await lab?.teardown();
}, 120_000);

async function startSidecar(host: LabHost): Promise<void> {
  sidecars[host.name] = await startHubSidecar(hub, host, { POTLUCK_OWNER: owners[host.name], POTLUCK_HEAD_START: "0" });
}

/** A call to the ledger on the hub (the write token only on writes); status and JSON body. */
async function ledgerCall(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const argv = ["curl", "-s", "-w", "\n%{http_code}", "-X", method, `http://127.0.0.1:${ledgerPort}${path}`];
  if (method !== "GET") argv.push("-H", `authorization: Bearer ${writeToken}`);
  if (body !== undefined) argv.push("-H", "content-type: application/json", "-d", JSON.stringify(body));
  const res = await hub.host.exec(argv, { timeoutMs: 30_000 });
  const nl = res.stdout.lastIndexOf("\n");
  const text = res.stdout.slice(0, nl);
  return { status: Number(res.stdout.slice(nl + 1)), body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

async function entries(account: string): Promise<LedgerEntry[]> {
  const res = await ledgerCall("GET", `/v1/accounts/${account}/entries?limit=500`);
  return (res.body as { entries: LedgerEntry[] }).entries;
}

async function balance(account: string): Promise<{ balance: number; held: number }> {
  return (await ledgerCall("GET", `/v1/balances/${account}`)).body as { balance: number; held: number };
}

/** A chat completion on `from`'s own sidecar, pinned to `on`. */
async function ask(from: LabHost, on: string) {
  const res = await from.exec(
    [
      "curl",
      "-s",
      "-m",
      "240",
      "-H",
      "content-type: application/json",
      "-d",
      JSON.stringify({
        model,
        messages: [{ role: "user", content: `hello from ${from.name}` }],
        max_tokens: maxTokens,
        potluck: { on },
      }),
      `http://127.0.0.1:${sidecarPort}/v1/chat/completions`,
    ],
    { timeoutMs: 300_000 },
  );
  return JSON.parse(res.stdout) as {
    served_by: string;
    usage: { prompt_tokens: number; completion_tokens: number };
  };
}

/** The model's size as `host`'s sidecar publishes it (what its peers price a job at). */
async function publishedParameters(host: LabHost): Promise<number> {
  const res = await host.exec(["curl", "-sf", `http://127.0.0.1:${sidecarPort}/v1/models`], { timeoutMs: 30_000 });
  const list = JSON.parse(res.stdout) as { data: { id: string; potluck: { parameters?: number } }[] };
  const parameters = list.data.find((m) => m.id === model)?.potluck.parameters;
  if (parameters === undefined) throw new Error(`${host.name} publishes no size for ${model}: ${res.stdout}`);
  return parameters;
}

/**
 * The price of a job, written out independently of the sidecar's code: reference-A100 prefill
 * (2 FLOPs per weight per token at half of 312 TFLOP/s) plus decode (2 bytes per weight per token
 * over 2.039 TB/s), in micro-A100-minutes, rounded up, at least 1.
 */
function price(promptTokens: number, completionTokens: number, parameters: number): number {
  const seconds = (promptTokens * 2 * parameters) / 156e12 + (completionTokens * parameters * 2) / 2.039e12;
  return Math.max(1, Math.ceil((seconds / 60) * 1_000_000));
}

describe("a job between owners, metered over the lab", { timeout: 15 * 60_000 }, () => {
  for (const [from, to] of [
    ["mac", "eve"],
    ["eve", "mac"],
  ] as const) {
    it(`${from}'s prompt served by ${to}: one hold, one settlement, priced as ${to} published`, async () => {
      const payer = owners[from]!;
      const payee = owners[to]!;
      const before = { payer: await balance(payer), payee: await balance(payee) };
      const seen = { payer: (await entries(payer)).length, payee: (await entries(payee)).length };
      const reply = await ask(lab.host(from), to);
      expect(reply.served_by).toBe(to);
      const fresh = async () => (await entries(payer)).slice(0, (await entries(payer)).length - seen.payer);
      // Entries come newest first: wait for the hold and its settlement (with the payee's paired earn).
      const ok = await pollUntil(async () => (await fresh()).some((e) => e.kind === "settle"), {
        timeoutMs: 60_000,
        intervalMs: 250,
      });
      expect(ok, `no settlement for ${from}'s job: ${sidecars[to]?.output().slice(-1500)}`).toBe(true);
      // A moment more, so a stray second event (a void, a refund, a duplicate) would land too.
      await new Promise((r) => setTimeout(r, 2_000));
      const mine = await fresh();
      expect(mine.map((e) => e.kind).sort()).toEqual(["hold", "settle"]);
      const hold = mine.find((e) => e.kind === "hold")!;
      const settle = mine.find((e) => e.kind === "settle")!;
      expect(settle.ref).toBe(hold.eventId);
      expect(JSON.parse(hold.meta)).toMatchObject({ counterparty: payee, servedBy: to, model });
      const parameters = await publishedParameters(lab.host(to));
      const amount = price(reply.usage.prompt_tokens, reply.usage.completion_tokens, parameters);
      console.log(
        `${from} → ${to}: ${reply.usage.prompt_tokens} + ${reply.usage.completion_tokens} tokens at ${parameters} weights: hold ${hold.heldDelta}, settled ${-settle.delta} micro-credits`,
      );
      expect(-settle.delta).toBe(amount);
      // The hold: max_tokens and the requester's prompt bound (its bytes + 32 per message + 512), at the same size.
      expect(hold.heldDelta).toBe(price(`hello from ${from}`.length + 32 + 512, maxTokens, parameters));
      expect(hold.heldDelta).toBeGreaterThanOrEqual(amount);
      expect(settle.heldDelta).toBe(-hold.heldDelta);
      // The payee's side: exactly one earn, the pair of that settlement.
      const earned = (await entries(payee)).slice(0, (await entries(payee)).length - seen.payee);
      expect(earned.map((e) => [e.kind, e.delta, e.ref])).toEqual([["earn", amount, settle.eventId]]);
      expect(await balance(payer)).toMatchObject({ balance: before.payer.balance - amount, held: before.payer.held });
      expect(await balance(payee)).toMatchObject({ balance: before.payee.balance + amount, held: before.payee.held });
    });
  }

  it("conserves credits, and each owner's signed proof gives the balance the ledger reports", async () => {
    const [a, b] = [await balance(owners.mac!), await balance(owners.eve!)];
    expect(a.balance + b.balance).toBe(2 * grant);
    expect(a.held + b.held).toBe(0);
    expect((await ledgerCall("POST", "/v1/log/snapshots")).status).toBe(201);
    expect((await ledgerCall("POST", "/v1/log/checkpoints")).status).toBe(201);
    const { key } = (await ledgerCall("GET", "/v1/log/key")).body as { key: string };
    for (const [account, row] of [
      [owners.mac!, a],
      [owners.eve!, b],
    ] as const) {
      const bundle = await ledgerCall("GET", `/v1/log/proofs/${account}`);
      expect(bundle.status).toBe(200);
      expect(verifyProofBundle(bundle.body, key)).toMatchObject({ account, balance: row.balance });
    }
  });
});
