import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import jsQRModule from "jsqr";
import QRCode from "qrcode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildCoordinatorApp,
  CoordinatorState,
  loadOrCreateCoordinatorKey,
  openDatabase,
  type OpenedDatabase,
} from "@potluck/coordinator";
import { coordinatorKeyFingerprint } from "@potluck/peer";
import { coordinatorClient, joinMesh, readMeshState, type Probe, type Runner } from "@potluck/mesh";
import { qrOptions } from "../src/lib/qr.js";
import { potluck } from "./helpers/bin.js";

// Choosing a backend (by OS, injected here, or by --mesh) against a real coordinator that names
// its hub, and the `potluck join` flags: --dry-run plans and runs nothing, --mesh external writes
// the spoke config and --qr prints it as a QR code that decodes back to the same text. The
// golden plans are apps/mesh/test/backends.test.ts; the config carrying traffic is the lab's
// (test/e2e/mesh-external.test.ts).
// jsqr is CommonJS with an ES-style `default` in its types: under NodeNext the import is the module object.
const jsQR = jsQRModule as unknown as typeof jsQRModule.default;
const dir = mkdtempSync(join(tmpdir(), "potluck-meshback-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const adminSecret = "mesh-backends-admin-secret-00";
const nothingRuns: Runner = async (argv) => {
  throw new Error(`a dry run ran ${argv.join(" ")}`);
};
/** A machine where nothing exists yet: every probe answers "absent". */
const bareMachine: Probe = {
  run: async () => ({ code: 1, stdout: "", stderr: "absent" }),
  exists: () => false,
  readFile: () => null,
};

let database: OpenedDatabase;
let server: ServerType;
let url: string;
const newToken = async () => (await coordinatorClient(url, { adminSecret }).createToken({})).token;

beforeAll(async () => {
  database = await openDatabase({ dataDir: join(dir, "coordinator") });
  const signingKey = loadOrCreateCoordinatorKey(join(dir, "coordinator"));
  const state = await CoordinatorState.open({
    db: database.db,
    keyFingerprint: coordinatorKeyFingerprint(signingKey.publicKey),
    hubMachine: "closet",
  });
  const app = buildCoordinatorApp({ startedAt: Date.now(), state, adminSecret, signingKey });
  server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise((r) => server.once("listening", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The hub's own machine, as the household's Linux box joins its own coordinator.
  await joinMesh({
    coordinatorUrl: url,
    token: await newToken(),
    dataDir: join(dir, "closet"),
    name: "closet",
    endpoint: "192.168.1.10:51820",
    interface: false,
    run: nothingRuns,
  });
}, 120_000);
afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await database?.close();
});

describe("joinMesh picks the backend", () => {
  it("names the hub in the roster", async () => {
    expect((await coordinatorClient(url).roster()).hub).toBe("closet");
  });

  it("plans by the (injected) OS on a dry run, running nothing and recording no backend", async () => {
    const cases = [
      ["darwin", "darwin", "ifconfig"],
      ["win32", "windows", "/installtunnelservice"],
      ["freebsd", "external", "[Peer]"],
    ] as const;
    for (const [platform, backend, mark] of cases) {
      const dataDir = join(dir, `dry-${platform}`);
      const joined = await joinMesh({
        coordinatorUrl: url,
        token: await newToken(),
        dataDir,
        name: `dry-${backend}`,
        endpoint: "192.168.1.30:51820",
        interface: true,
        run: nothingRuns,
        platform,
        dryRun: true,
        probe: bareMachine,
      });
      expect(joined.plan?.backend, platform).toBe(backend);
      expect(JSON.stringify(joined.plan?.steps), platform).toContain(mark);
      expect(readMeshState(dataDir)?.backend, platform).toBeUndefined();
    }
  });

  it("--mesh external writes the spoke config 0600, announces no endpoint, and is remembered", async () => {
    const dataDir = join(dir, "phone");
    const configOut = join(dir, "phone.conf");
    const joined = await joinMesh({
      coordinatorUrl: url,
      token: await newToken(),
      dataDir,
      name: "phone",
      interface: true,
      run: nothingRuns,
      mesh: "external",
      configOut,
    });
    const conf = readFileSync(configOut, "utf8");
    expect(statSync(configOut).mode & 0o777).toBe(0o600);
    const hub = joined.roster.machines.find((m) => m.name === "closet");
    expect(conf).toContain(`PublicKey = ${hub?.wireguardPublicKey}`);
    expect(conf).toContain("Endpoint = 192.168.1.10:51820");
    expect(conf).toContain(`Address = ${joined.state.meshIp}/32`);
    expect(conf).toContain(`PrivateKey = ${readFileSync(join(dataDir, "wireguard-potluck0.key"), "utf8").trim()}`);
    expect(joined.state).toMatchObject({ backend: "external", endpoints: [] });
    // The agent restarting (no --mesh) uses the saved backend: the config again, no command run.
    const again = await joinMesh({ dataDir, interface: true, run: nothingRuns, configOut });
    expect(again.plan?.backend).toBe("external");
  });
});

/** Module grid → RGBA pixels (dark modules black), with the 4-module quiet zone a reader expects. */
function render(dark: (row: number, col: number) => boolean, size: number, scale = 4) {
  const quiet = 4;
  const side = (size + 2 * quiet) * scale;
  const data = new Uint8ClampedArray(side * side * 4).fill(255);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) {
      const r = Math.floor(y / scale) - quiet;
      const c = Math.floor(x / scale) - quiet;
      if (r >= 0 && c >= 0 && r < size && c < size && dark(r, c))
        data.fill(0, (y * side + x) * 4, (y * side + x) * 4 + 3);
    }
  return { data, side };
}

/**
 * The terminal QR back into modules. Each cell is two rows: the glyph's half (▀ top, ▄ bottom,
 * █ both) is drawn in the foreground colour, the rest is background; a module is dark only where
 * black foreground is drawn (the edge rows use white foreground on the terminal's own background).
 */
function modulesFromTerminal(text: string): boolean[][] {
  const rows: boolean[][] = [];
  for (const line of text.split("\n").filter((l) => l.trim() !== "")) {
    const top: boolean[] = [];
    const bottom: boolean[] = [];
    let black = false;
    for (const [, code, glyph] of line.matchAll(/\x1b\[(\d+)m|([^\x1b])/g)) {
      if (code !== undefined) {
        if (code === "30") black = true;
        else if (code === "37" || code === "0") black = false;
        continue;
      }
      top.push(black && (glyph === "▀" || glyph === "█"));
      bottom.push(black && (glyph === "▄" || glyph === "█"));
    }
    rows.push(top, bottom);
  }
  return rows;
}

describe("potluck join (the CLI)", () => {
  it("refuses an unknown backend, a misspelt flag and --qr without external (exit 2)", async () => {
    const bad = await potluck("join", "--mesh", "bsd");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--mesh expects one of linux, darwin, windows, external, not "bsd"/);
    const typo = await potluck("join", "--dryrun");
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown flag --dryrun \(did you mean --dry-run\?\)/);
    const qr = await potluck("join", "--mesh", "linux", "--qr");
    expect(qr.code).toBe(2);
    expect(qr.stderr).toMatch(/--qr is for --mesh external/);
  }, 180_000);

  it("--dry-run prints the darwin plan without the key; --mesh external --qr prints the config as a QR code", async () => {
    const dry = await potluck(
      "join",
      url,
      await newToken(),
      "--name",
      "laptop",
      "--data-dir",
      join(dir, "laptop"),
      "--endpoint",
      "192.168.1.40:51820",
      "--mesh",
      "darwin",
      "--dry-run",
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`mesh backend "darwin"; nothing below was run or written`);
    expect(dry.stdout).toContain("env WG_TUN_NAME_FILE=/var/run/wireguard/potluck0.name wireguard-go utun");
    expect(dry.stdout).not.toContain(readFileSync(join(dir, "laptop", "wireguard-potluck0.key"), "utf8").trim());
    expect(dry.stdout).toMatch(/ifconfig "\$UTUN" inet 100\.64\.0\.\d+\/10 100\.64\.0\.\d+ alias/);

    const configOut = join(dir, "tablet.conf");
    const ran = await potluck(
      "join",
      url,
      await newToken(),
      "--name",
      "tablet",
      "--data-dir",
      join(dir, "tablet"),
      "--mesh",
      "external",
      "--config-out",
      configOut,
      "--qr",
    );
    expect(ran.code, ran.stderr).toBe(0);
    const conf = readFileSync(configOut, "utf8");
    // What was printed decodes back to the file, byte for byte.
    const printed = modulesFromTerminal(ran.stdout.slice(ran.stdout.indexOf("\x1b[")));
    const fromTerminal = render((r, c) => printed[r]?.[c] === true, Math.max(printed.length, printed[0]?.length ?? 0));
    expect(jsQR(fromTerminal.data, fromTerminal.side, fromTerminal.side)?.data).toBe(conf);
    // And the qrcode package's own module matrix for the same text, with the same options.
    const { modules } = QRCode.create(conf, qrOptions);
    const fromMatrix = render((r, c) => modules.get(r, c) === 1, modules.size);
    expect(jsQR(fromMatrix.data, fromMatrix.side, fromMatrix.side)?.data).toBe(conf);
  }, 240_000);
});
