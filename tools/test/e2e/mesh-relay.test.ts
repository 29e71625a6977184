import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRelayLab, relayModel, type RelayLab } from "../../bench/relay/lab.js";
import { httpFrom, pollUntil, serveHttp } from "../../src/lab/index.js";

// Direct-then-hub for real: a hub (coordinator, NATS, its own potluck0 forwarding between roster
// machines) and two Linux machines, alpha (no model) and beta (the tiny TEST model), each running
// the mesh agent's loop (`potluck join --follow`) and the real sidecar. nftables on beta drops UDP
// between the two: their WireGuard goes through the hub, prompts from alpha are still served by
// beta, and doctor says "relayed via hub" as a healthy state. The block lifted, both go back to
// direct. A host on the LAN that is not on the roster cannot use the hub to reach the mesh.
/** Several node processes per host on a loaded 2-core machine. */
const upMs = 240_000;
/**
 * Fail-over budget: the agent's silence limit (relay.ts directSilentMs, 55 s) plus the roster
 * poll (5 s) on both machines, with room for a loaded box.
 */
const failOverMs = 120_000;
/** Back to direct: the agent's retry interval (relay.ts directRetryMs, 20 s) plus a poll, with room. */
const failBackMs = 60_000;

let r: RelayLab;

const ask = (prompt: string) => r.cli(r.alpha, ["ask", "--model", relayModel, "--max-tokens", "8", prompt]);

/** `potluck ask` from alpha until served by beta (a path that just changed may need a moment). */
async function askServedByBeta(prompt: string, timeoutMs = 120_000): Promise<void> {
  let last = "";
  const served = await pollUntil(
    async () => {
      const res = await ask(prompt);
      last = res.stdout + res.stderr;
      return res.code === 0 && /served by beta/.test(res.stdout);
    },
    { timeoutMs, intervalMs: 1_000 },
  );
  expect(served, last).toBe(true);
}

beforeAll(async () => {
  r = await createRelayLab();
}, 900_000);

afterAll(async () => {
  await r?.teardown();
}, 120_000);

describe("direct first, the hub when the direct path is blocked", () => {
  it("alpha and beta start direct; a prompt from alpha is served by beta; doctor says direct", async () => {
    await r.hub.waitOnline(["hub", "alpha", "beta"], upMs);
    expect(await r.waitPath("direct", upMs)).not.toBeNull();
    await askServedByBeta("Hello directly", upMs);
    let report = await r.doctor(r.alpha, "beta");
    await pollUntil(
      async () => {
        report = await r.doctor(r.alpha, "beta");
        return report.usable;
      },
      { timeoutMs: 120_000, intervalMs: 2_000 },
    );
    expect(report.usable, JSON.stringify(report.layers, null, 1)).toBe(true);
    expect(report.layers.find((l) => l.code === "path")?.message).toMatch(/^direct to /);
  }, 900_000);

  it("UDP blocked between them: both move to the hub within the stated time; prompts go through it; doctor says relayed, not failed", async () => {
    const undo = await r.blockDirect();
    try {
      const tookMs = await r.waitPath("hub", failOverMs);
      expect(tookMs, `${r.agentOutput(r.alpha).slice(-1500)}\n${r.agentOutput(r.beta).slice(-1500)}`).not.toBeNull();
      expect(r.agentOutput(r.alpha)).toMatch(/beta: relayed via the hub \(/);
      // Still blocked: the direct peer has no handshake, yet prompts are served by beta through the hub.
      await askServedByBeta("Hello through the hub", 60_000);
      for (let i = 0; i < 3; i++) {
        const res = await ask(`Relayed prompt ${i}`);
        expect(res.code, res.stderr).toBe(0);
        expect(res.stdout).toMatch(/served by beta/);
      }
      let report = await r.doctor(r.alpha, "beta");
      await pollUntil(
        async () => {
          report = await r.doctor(r.alpha, "beta");
          return report.usable;
        },
        { timeoutMs: 60_000, intervalMs: 2_000 },
      );
      expect(report.usable, JSON.stringify(report.layers, null, 1)).toBe(true);
      expect(report.firstFailure).toBeNull();
      const path = report.layers.find((l) => l.code === "path");
      expect(path?.status).toBe("ok");
      expect(path?.message).toMatch(/^relayed via hub hub: .*ms round trip through it/);
      expect(report.layers.find((l) => l.code === "tunnel")?.message).toMatch(
        /handshake with hub \(relaying to beta\)/,
      );
      expect(await r.pathOf(r.alpha, r.beta)).toBe("hub");
    } finally {
      await undo();
    }
    // Lifted: a direct handshake comes at the next retry and both go back to direct.
    const backMs = await r.waitPath("direct", failBackMs);
    expect(backMs, r.agentOutput(r.alpha).slice(-1500)).not.toBeNull();
    expect(r.agentOutput(r.alpha)).toMatch(/beta: direct again \(direct handshake/);
    await askServedByBeta("Hello directly again", 60_000);
  }, 900_000);

  it("the hub forwards nothing for a LAN host that is not on the roster (no open relay)", async () => {
    const stranger = r.lab.host("stranger");
    const beta = (await r.hub.roster()).machines.find((m) => m.name === "beta");
    expect(beta).toBeDefined();
    const port = 8471;
    await serveHttp(r.beta, port);
    // The mesh from alpha: the listener answers, so a refusal below is the hub's doing.
    expect((await httpFrom(r.alpha, `http://${beta?.meshIp}:${port}/`, { timeoutMs: 5_000 })).ok).toBe(true);
    const dropped = async () => {
      const chain = await r.hub.host.exec(["nft", "list", "chain", "inet", "potluck", "forward"]);
      return Number(/oifname "potluck0" counter packets (\d+)/.exec(chain.stdout)?.[1] ?? Number.NaN);
    };
    const before = await dropped();
    expect(before).not.toBeNaN();
    // The stranger routes the whole mesh at the hub's LAN address, as a neighbour trying its luck would.
    const route = await stranger.exec(["ip", "route", "add", "100.64.0.0/10", "via", r.hub.host.underlayIp]);
    expect(route.code, route.stderr).toBe(0);
    const attempt = await httpFrom(stranger, `http://${beta?.meshIp}:${port}/`, { timeoutMs: 3_000 });
    expect(attempt.ok).toBe(false);
    expect(await dropped()).toBeGreaterThan(before);
  }, 300_000);
});
