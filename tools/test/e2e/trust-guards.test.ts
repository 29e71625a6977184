import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type Roster } from "@potluck/protocol";
import { generateIdentity } from "@potluck/peer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLab, type Lab, type LabHost, type LabProcess, labRosterEntry, pollUntil } from "../../src/lab/index.js";
import { repoRoot, serviceEntry } from "../../src/lib/repo.js";

// Issue 18, the guards slice in the lab: home1 (owner home, the tiny TEST model) and eve (owner
// eve, on the roster with her own identity), real sidecars in their own network namespaces over
// the WireGuard mesh. Eve attacks home1's loopback API (attack 6) and floods its signed peer API
// with an unauthenticated chunked body (attack 7); home1's memory is compared before and after.

const port = 8321;
const readyMs = 180_000;
const identities = { home1: generateIdentity(), eve: generateIdentity() };
const owners = { home1: "home", eve: "eve" } as const;
let lab: Lab;
let home1: LabHost;
let eve: LabHost;
let home1Sidecar: LabProcess;

function dataDir(host: LabHost): string {
  return join(host.runDir, "potluck");
}

async function startSidecar(host: LabHost, name: "home1" | "eve"): Promise<LabProcess> {
  const proc = host.spawn("sidecar", [process.execPath, "--import", "tsx", serviceEntry.sidecar], {
    cwd: repoRoot,
    env: {
      POTLUCK_MACHINE: name,
      POTLUCK_OWNER: owners[name],
      POTLUCK_DATA_DIR: dataDir(host),
      POTLUCK_ROSTER_FILE: join(host.runDir, "roster.json"),
      POTLUCK_PORT: String(port),
      POTLUCK_THREADS: "1",
      POTLUCK_NATS_PREFIX: `t${randomBytes(5).toString("hex")}`,
    },
  });
  const ready = await pollUntil(
    async () =>
      (await host.exec(["curl", "-sf", `http://127.0.0.1:${port}/health`], { timeoutMs: 5_000 })).stdout.includes(
        '"ok"',
      ),
    { timeoutMs: readyMs, intervalMs: 500 },
  );
  if (!ready)
    throw new Error(`sidecar on ${host.name} not ready within ${readyMs / 1000} s: ${proc.output().slice(-2000)}`);
  return proc;
}

beforeAll(async () => {
  lab = await createLab({ hosts: ["home1", "eve"] });
  home1 = lab.host("home1");
  eve = lab.host("eve");
  const roster: Roster = {
    version: 1,
    machines: [
      labRosterEntry(home1, identities.home1.publicKey, "home"),
      labRosterEntry(eve, identities.eve.publicKey, "eve"),
    ],
  };
  for (const [host, name] of [
    [home1, "home1"],
    [eve, "eve"],
  ] as const) {
    mkdirSync(dataDir(host), { recursive: true, mode: 0o700 });
    const pem = join(dataDir(host), "identity-ed25519.pem");
    writeFileSync(pem, identities[name].privateKeyPem, { mode: 0o600 });
    chmodSync(pem, 0o600);
    writeFileSync(join(host.runDir, "roster.json"), JSON.stringify(roster));
  }
  [home1Sidecar] = await Promise.all([startSidecar(home1, "home1"), startSidecar(eve, "eve")]);
}, 400_000);

afterAll(async () => {
  await lab?.teardown();
});

/** curl inside `host`; returns status and body. */
async function curl(
  host: LabHost,
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  const argv = ["curl", "-s", "-w", "\n%{http_code}", "-X", options.method ?? "GET"];
  for (const [name, value] of Object.entries(options.headers ?? {})) argv.push("-H", `${name}: ${value}`);
  if (options.body !== undefined) argv.push("-H", "content-type: application/json", "--data-binary", options.body);
  const result = await host.exec([...argv, url], { timeoutMs: 60_000 });
  const lines = result.stdout.split("\n");
  return { status: Number(lines.pop()), body: lines.join("\n") };
}

const local = (path: string) => `http://127.0.0.1:${port}${path}`;
const memoryState = async () => (await curl(home1, local("/memory/status"))).body;

/** Resident memory of a process and all its descendants (the lab wraps the sidecar in a launcher). */
function treeRssBytes(root: number): number {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // Gone meanwhile.
    }
  }
  const tree = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parents) if (!tree.has(pid) && tree.has(ppid)) grew = tree.add(pid) !== undefined;
  }
  let bytes = 0;
  for (const pid of tree) {
    try {
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
      bytes += Number(rss ?? 0) * 1024;
    } catch {
      // Gone meanwhile.
    }
  }
  return bytes;
}

describe("eve attacks home1's guards over the lab mesh", () => {
  it("attack 6: home1's local API refuses eve over the mesh and a DNS-rebound page on home1, and memory is unchanged", async () => {
    const written = await curl(home1, local("/memory"), {
      method: "POST",
      body: JSON.stringify({ text: "the family's wifi password is on the fridge" }),
    });
    expect(written.status).toBe(201);
    const before = await memoryState();

    const meshUrl = `http://${home1.meshIp}:${port}`;
    for (const [method, path, body] of [
      ["GET", "/v1/models"],
      ["POST", "/memory/search", JSON.stringify({ query: "wifi" })],
      ["PUT", "/memory/peer-search", JSON.stringify({ enabled: true })],
    ] as const) {
      const fromEve = await curl(eve, `${meshUrl}${path}`, {
        method,
        headers: { host: `127.0.0.1:${port}` },
        ...(body === undefined ? {} : { body }),
      });
      expect(fromEve.status, `${method} ${path} from eve`).toBe(403);
      expect(JSON.parse(fromEve.body)).toMatchObject({ error: { code: "forbidden", field: "address" } });
      const rebound = await curl(home1, local(path), {
        method,
        headers: { host: `eve-rebind.example:${port}`, origin: `http://eve-rebind.example:${port}` },
        ...(body === undefined ? {} : { body }),
      });
      expect(rebound.status, `${method} ${path} rebound`).toBe(403);
      expect(JSON.parse(rebound.body)).toMatchObject({ error: { code: "forbidden", field: "host" } });
    }
    expect(await memoryState()).toBe(before);
    expect(JSON.parse(await memoryState())).toMatchObject({ peerSearchEnabled: false });
  });

  it("attack 7: a 300 MiB chunked body from eve at /peer/capabilities is refused with 413 and never held", async () => {
    const rssBefore = treeRssBytes(home1Sidecar.pid);
    // The measurement sees the sidecar itself (node with a model loaded), not only its launcher.
    expect(rssBefore).toBeGreaterThan(50 * 1024 * 1024);
    const flood = await eve.exec(
      [
        "sh",
        "-c",
        `head -c 314572800 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST -H 'x-potluck-machine: eve' -T - http://${home1.meshIp}:${port}/peer/capabilities`,
      ],
      { timeoutMs: 180_000 },
    );
    const rssAfter = treeRssBytes(home1Sidecar.pid);
    expect(flood.stdout.trim()).toBe("413");
    expect(rssAfter - rssBefore).toBeLessThan(64 * 1024 * 1024);
    // Still serving its own user.
    expect((await curl(home1, local("/v1/models"))).status).toBe(200);
  }, 240_000);
});
