import { execFileSync } from "node:child_process";
import type { MeshState, Roster, RosterEntry } from "@potluck/protocol";
import { fakeKey, rosterEntry } from "./roster-fixture.js";
import { describe, expect, it } from "vitest";
import {
  chooseBackend,
  executePlan,
  formatPlan,
  type Plan,
  type PlanInput,
  type Probe,
  type RunResult,
  type Step,
} from "../src/index.js";

// Golden plans: the exact commands and files each backend produces for one roster, on a machine
// the probe describes. macOS and Windows cannot run here; their plans are checked line by line
// against the platform tools' documented usage (cited at each test). Running a plan for real is
// the lab's (tools/test/e2e/mesh-external.test.ts, coordinator-mesh.test.ts).
const key = fakeKey;
const entry = rosterEntry;
const closet = entry("closet", 1, ["192.168.1.10:51820"]);
const mac = entry("mac", 2, ["192.168.1.20:51820"]);
const gamer = entry("gamer", 3, []);
const phone = entry("phone", 4, []);
const roster: Roster = { version: 7, machines: [closet, mac, gamer, phone], hub: "closet" };
const stateOf = (m: RosterEntry): MeshState => ({
  coordinatorUrl: "http://192.168.1.10:8320",
  machineId: m.id,
  name: m.name,
  owner: "home",
  meshIp: m.meshIp,
  prefixLength: 10,
  mtu: 1280,
  interfaceName: "potluck0",
  listenPort: 51820,
  endpoints: m.endpoints,
});
const privateKey = key("P");

/** A machine as the probe sees it: commands that succeed with their output, files that exist. */
function probeOf(answers: Record<string, string> = {}, files: Record<string, string> = {}): Probe {
  return {
    run: async (argv) => {
      const out = answers[argv.join(" ")];
      return out === undefined ? { code: 1, stdout: "", stderr: "absent" } : { code: 0, stdout: out, stderr: "" };
    },
    exists: (path) => path in files,
    readFile: (path) => files[path] ?? null,
  };
}
const input = (self: RosterEntry, probe: Probe, extra: Partial<PlanInput> = {}): PlanInput => ({
  state: stateOf(self),
  roster,
  dataDir: "/home/ana/.potluck",
  privateKeyPath: "/home/ana/.potluck/wireguard-potluck0.key",
  privateKey: () => privateKey,
  probe,
  ...extra,
});
const commands = (plan: Plan) =>
  plan.steps.map((s: Step) =>
    s.kind === "run"
      ? [...s.argv, ...(s.orElse === undefined ? [] : ["||", ...s.orElse]), ...(s.mayFail === true ? ["|| true"] : [])]
      : s.kind === "wait"
        ? ["until", ...s.argv]
        : s.kind === "read"
          ? [`${s.variable}=$(cat ${s.path})`]
          : [`write ${s.path} ${s.mode.toString(8)}`],
  );
const peerAdd = (m: RosterEntry, dev: string) => [
  "wg",
  "set",
  dev,
  "peer",
  m.wireguardPublicKey,
  "allowed-ips",
  `${m.meshIp}/32`,
  "persistent-keepalive",
  "25",
  ...(m.endpoints[0] === undefined ? [] : ["endpoint", m.endpoints[0]]),
];

describe("linux backend", () => {
  const keyPath = "/home/ana/.potluck/wireguard-potluck0.key";
  it("creates potluck0 with kernel WireGuard falling back to wireguard-go when the module is not loaded", async () => {
    const plan = await chooseBackend("linux").plan(input(closet, probeOf()));
    expect(commands(plan)).toEqual([
      ["ip", "link", "add", "dev", "potluck0", "type", "wireguard", "||", "wireguard-go", "potluck0"],
      ["until", "wg", "show", "potluck0", "public-key"],
      ["wg", "set", "potluck0", "private-key", keyPath, "listen-port", "51820"],
      ["ip", "addr", "add", "100.64.0.1/10", "dev", "potluck0"],
      ["ip", "link", "set", "potluck0", "mtu", "1280", "up"],
      // Packets for 100.64.0.1 that did not come through potluck0 are dropped (mesh-guard.ts).
      ["write /home/ana/.potluck/mesh/mesh-guard.nft 600"],
      ["nft", "-f", "/home/ana/.potluck/mesh/mesh-guard.nft", "|| true"],
      peerAdd(mac, "potluck0"),
      peerAdd(gamer, "potluck0"),
      peerAdd(phone, "potluck0"),
      // closet is the hub: it forwards between roster machines, and only between them.
      ["sysctl", "-w", "net.ipv4.ip_forward=1"],
      ["write /home/ana/.potluck/mesh/hub-forward.nft 600"],
      ["nft", "-f", "/home/ana/.potluck/mesh/hub-forward.nft"],
    ]);
    expect(plan.peers.set.map((p) => p.name)).toEqual(["mac", "gamer", "phone"]);
  });

  it("uses only kernel WireGuard when /sys/module/wireguard is there", async () => {
    const plan = await chooseBackend("linux").plan(input(closet, probeOf({}, { "/sys/module/wireguard": "" })));
    expect(commands(plan)[0]).toEqual(["ip", "link", "add", "dev", "potluck0", "type", "wireguard"]);
  });

  it("on a right interface missing one peer, plans that peer (and the idempotent key and link)", async () => {
    const dump = [
      `${privateKey}\t${closet.wireguardPublicKey}\t51820\toff`,
      `${mac.wireguardPublicKey}\t(none)\t192.168.1.20:51820\t100.64.0.2/32\t0\t0\t0\t25`,
      `${gamer.wireguardPublicKey}\t(none)\t(none)\t100.64.0.3/32\t0\t0\t0\t25`,
      `${key("x")}\t(none)\t(none)\t100.64.0.9/32\t0\t0\t0\t25`,
    ].join("\n");
    const probe = probeOf(
      {
        "nft list set inet potluck roster":
          "table inet potluck {\n\tset roster {\n\t\ttype ipv4_addr\n" +
          "\t\telements = { 100.64.0.1, 100.64.0.2,\n\t\t\t     100.64.0.3, 100.64.0.4 }\n\t}\n}\n",
        "ip link show dev potluck0": "5: potluck0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1280",
        "ip -4 -o addr show dev potluck0": "5: potluck0    inet 100.64.0.1/10 scope global potluck0\\       valid_lft",
        "wg show potluck0 dump": dump,
        "nft list table inet potluck_guard":
          "table inet potluck_guard {\n\tchain input {\n\t\ttype filter hook input priority -5; policy accept;\n" +
          '\t\tip daddr 100.64.0.1 iifname != { "potluck0", "lo" } counter packets 0 bytes 0 drop\n\t}\n}\n',
      },
      { "/proc/sys/net/ipv4/ip_forward": "1\n" },
    );
    const plan = await chooseBackend("linux").plan(input(closet, probe));
    expect(commands(plan)).toEqual([
      ["wg", "set", "potluck0", "private-key", keyPath, "listen-port", "51820"],
      ["ip", "link", "set", "potluck0", "mtu", "1280", "up"],
      ["wg", "set", "potluck0", "peer", key("x"), "remove"],
      peerAdd(phone, "potluck0"),
    ]);
  });
});

describe("darwin backend", () => {
  // Checked against wireguard-tools' src/wg-quick/darwin.bash (how wg-quick brings a tunnel up on
  // macOS) and wireguard-go's README ("the interface name must be utun[0-9]+ ... or utun to have
  // the kernel select the lowest available"; WG_TUN_NAME_FILE receives the chosen name):
  //   add_if:    WG_TUN_NAME_FILE=/var/run/wireguard/NAME.name wireguard-go utun; real name read back
  //   add_addr:  ifconfig UTUN inet ADDR/PREFIX ADDR alias
  //   set_mtu:   ifconfig UTUN mtu MTU          up_if: ifconfig UTUN up
  //   add_route: route -q -n add -inet CIDR -interface UTUN
  // wg(8): `wg set IFACE private-key FILE listen-port PORT peer KEY allowed-ips … endpoint …`.
  const keyPath = "/Users/ana/Library/Application Support/Potluck/wireguard-potluck0.key";
  const macInput = (probe: Probe) => input(mac, probe, { privateKeyPath: keyPath });

  it("starts wireguard-go on a kernel-chosen utun, reads its name, then addresses, routes and peers it", async () => {
    const plan = await chooseBackend(undefined, "darwin").plan(macInput(probeOf()));
    expect(plan.backend).toBe("darwin");
    expect(commands(plan)).toEqual([
      ["mkdir", "-p", "/var/run/wireguard"],
      ["env", "WG_TUN_NAME_FILE=/var/run/wireguard/potluck0.name", "wireguard-go", "utun"],
      ["UTUN=$(cat /var/run/wireguard/potluck0.name)"],
      ["until", "wg", "show", "$UTUN", "public-key"],
      ["wg", "set", "$UTUN", "private-key", keyPath, "listen-port", "51820"],
      ["ifconfig", "$UTUN", "inet", "100.64.0.2/10", "100.64.0.2", "alias"],
      ["route", "-q", "-n", "add", "-inet", "100.64.0.0/10", "-interface", "$UTUN"],
      ["ifconfig", "$UTUN", "mtu", "1280"],
      ["ifconfig", "$UTUN", "up"],
      // gamer and phone are spokes (no endpoint): reached through the hub, so their addresses ride on its peer.
      [
        ...peerAdd(closet, "$UTUN").slice(0, 6),
        "100.64.0.1/32,100.64.0.3/32,100.64.0.4/32",
        ...peerAdd(closet, "$UTUN").slice(7),
      ],
    ]);
    expect(plan.device).toBeNull();
    // What --dry-run prints is a script a Mac user can run: bash accepts it as is.
    const script = formatPlan(plan);
    expect(script).toContain(`UTUN="$(cat /var/run/wireguard/potluck0.name)"`);
    expect(script).toContain(`wg set "$UTUN" private-key '${keyPath}' listen-port 51820`);
    execFileSync("bash", ["-n"], { input: script });
  });

  it("re-uses the utun an earlier run left up (its socket still there) instead of starting another", async () => {
    const probe = probeOf(
      {
        "ifconfig utun7":
          "utun7: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1280\n" +
          "\tinet 100.64.0.2 --> 100.64.0.2 netmask 0xffc00000\n",
      },
      { "/var/run/wireguard/potluck0.name": "utun7\n", "/var/run/wireguard/utun7.sock": "" },
    );
    const plan = await chooseBackend("darwin").plan(macInput(probe));
    expect(plan.device).toBe("utun7");
    // `wg show utun7 dump` did not answer in this probe: every peer is (re)set, which is harmless.
    expect(commands(plan).slice(0, 3)).toEqual([
      ["wg", "set", "utun7", "private-key", keyPath, "listen-port", "51820"],
      ["ifconfig", "utun7", "mtu", "1280"],
      ["ifconfig", "utun7", "up"],
    ]);
  });

  it("runs with the utun name wireguard-go wrote in place of $UTUN", async () => {
    const plan = await chooseBackend("darwin").plan(macInput(probeOf()));
    const ran: string[] = [];
    let nameWritten = false;
    const vars = await executePlan(plan, {
      run: async (argv): Promise<RunResult> => {
        ran.push(argv.join(" "));
        if (argv[2] === "wireguard-go") nameWritten = true;
        return { code: 0, stdout: "", stderr: "" };
      },
      readFile: (path) => (nameWritten && path === "/var/run/wireguard/potluck0.name" ? "utun3\n" : null),
      sleep: async () => undefined,
    });
    expect(vars).toEqual({ UTUN: "utun3" });
    expect(ran).toContain("route -q -n add -inet 100.64.0.0/10 -interface utun3");
    expect(ran.some((l) => l.includes("$UTUN"))).toBe(false);
  });
});

describe("windows backend", () => {
  // Checked against wireguard-windows' docs/enterprise.md, "Tunnel Service": `wireguard.exe
  // /installtunnelservice C:\path\to\some\myconfname.conf` installs and starts WireGuardTunnel$myconfname,
  // `wireguard.exe /uninstalltunnelservice myconfname` removes it; the config is wg-quick's format
  // (wg-quick(8): [Interface] Address, MTU; [Peer] as wg(8)).
  const dataDir = "C:\\Users\\gamer\\AppData\\Local\\Potluck";
  const keyPath = `${dataDir}\\wireguard-potluck0.key`;
  it("writes a spoke config (the hub, the whole mesh) and installs the WireGuard tunnel service with it", async () => {
    const plan = await chooseBackend(undefined, "win32").plan(
      input(gamer, probeOf(), { dataDir, privateKeyPath: keyPath }),
    );
    const exe = "C:\\Program Files\\WireGuard\\wireguard.exe";
    expect(commands(plan)).toEqual([
      [`write ${dataDir}\\potluck0.conf 600`],
      [exe, "/uninstalltunnelservice", "potluck0", "|| true"],
      [exe, "/installtunnelservice", `${dataDir}\\potluck0.conf`],
    ]);
    const conf = plan.steps[0]?.kind === "write" ? plan.steps[0].content : "";
    expect(conf.split("\n")).toEqual([
      "[Interface]",
      "# potluck: gamer on the mesh of http://192.168.1.10:8320, through the hub closet",
      `PrivateKey = ${privateKey}`,
      "Address = 100.64.0.3/32",
      "MTU = 1280",
      "",
      "[Peer]",
      "# the hub closet (100.64.0.1)",
      `PublicKey = ${closet.wireguardPublicKey}`,
      "AllowedIPs = 100.64.0.0/10",
      "Endpoint = 192.168.1.10:51820",
      "PersistentKeepalive = 25",
      "",
    ]);
    const printed = formatPlan(plan);
    expect(printed).not.toContain(privateKey);
    expect(printed).toContain(`PrivateKey = <the contents of ${keyPath}>`);
    expect(printed).toContain(`"${exe}" /installtunnelservice ${dataDir}\\potluck0.conf`);
  });
});

describe("external backend and the hub", () => {
  it("writes the same spoke config to --config-out and runs nothing", async () => {
    const plan = await chooseBackend("external").plan(input(phone, probeOf(), { configOut: "/tmp/phone.conf" }));
    expect(commands(plan)).toEqual([["write /tmp/phone.conf 600"]]);
    const script = formatPlan(plan);
    expect(script).not.toContain(privateKey);
    expect(script).toContain("PrivateKey = $(cat /home/ana/.potluck/wireguard-potluck0.key)");
    execFileSync("bash", ["-n"], { input: script });
  });

  it("says what the hub's admin must do when the roster names no usable hub", async () => {
    const external = chooseBackend("external");
    await expect(external.plan(input(phone, probeOf(), { roster: { ...roster, hub: null } }))).rejects.toThrow(
      /names no hub machine.*POTLUCK_HUB_MACHINE/,
    );
    await expect(external.plan(input(closet, probeOf()))).rejects.toThrow(/is the hub itself/);
    const noEndpoint = { ...roster, machines: [{ ...closet, endpoints: [] }, phone] };
    await expect(external.plan(input(phone, probeOf(), { roster: noEndpoint }))).rejects.toThrow(/--endpoint/);
  });
});

describe("the hub's forwarding", () => {
  it("allows only roster addresses in and out of the tunnel, and drops the rest (no open relay)", async () => {
    const plan = await chooseBackend("linux").plan(input(closet, probeOf()));
    const rules = plan.steps.find((s) => s.kind === "write" && s.path.endsWith("hub-forward.nft"));
    expect(rules?.kind === "write" && rules.content.split("\n")).toEqual([
      "table inet potluck",
      "delete table inet potluck",
      "table inet potluck {",
      "  set roster {",
      "    type ipv4_addr",
      "    elements = { 100.64.0.1, 100.64.0.2, 100.64.0.3, 100.64.0.4 }",
      "  }",
      "  chain forward {",
      "    type filter hook forward priority 0; policy accept;",
      '    iifname "potluck0" oifname "potluck0" ip saddr @roster ip daddr @roster accept',
      '    iifname "potluck0" counter drop',
      '    oifname "potluck0" counter drop',
      "  }",
      "}",
      "",
    ]);
    // nft itself accepts them (-c: check only, nothing loaded).
    if (rules?.kind === "write") execFileSync("nft", ["-c", "-f", "-"], { input: rules.content });
    // Not the hub: no forwarding at all.
    const macPlan = await chooseBackend("linux").plan(input(mac, probeOf()));
    expect(
      macPlan.steps.some(
        (s) =>
          (s.kind === "write" && s.path.endsWith("hub-forward.nft")) || (s.kind === "run" && s.argv[0] === "sysctl"),
      ),
    ).toBe(false);
  });

  it("guards every machine's mesh address: dropped unless it came through potluck0 or loopback", async () => {
    const plan = await chooseBackend("linux").plan(input(mac, probeOf()));
    const guard = plan.steps.find((s) => s.kind === "write" && s.path.endsWith("mesh-guard.nft"));
    expect(guard?.kind === "write" && guard.content.split("\n")).toEqual([
      "table inet potluck_guard",
      "delete table inet potluck_guard",
      "table inet potluck_guard {",
      "  chain input {",
      "    type filter hook input priority -5; policy accept;",
      '    ip daddr 100.64.0.2 iifname != { "potluck0", "lo" } counter drop',
      "  }",
      "}",
      "",
    ]);
    if (guard?.kind === "write") execFileSync("nft", ["-c", "-f", "-"], { input: guard.content });
    // Loading it may fail where nft is missing: the mesh still comes up.
    expect(plan.steps.find((s) => s.kind === "run" && s.argv[0] === "nft")).toMatchObject({ mayFail: true });
  });
});

describe("choosing a backend", () => {
  it("follows the OS, lets --mesh override it, and gives an OS it cannot drive the external config", () => {
    expect(chooseBackend(undefined, "linux").name).toBe("linux");
    expect(chooseBackend(undefined, "darwin").name).toBe("darwin");
    expect(chooseBackend(undefined, "win32").name).toBe("windows");
    expect(chooseBackend(undefined, "freebsd").name).toBe("external");
    expect(chooseBackend("windows", "linux").name).toBe("windows");
    expect(() => chooseBackend("bsd", "linux")).toThrow(/--mesh expects one of linux, darwin, windows, external/);
  });
});

describe("executing a plan", () => {
  it("tries the fallback, ignores an expected failure, and stops at a real one naming it", async () => {
    const ran: string[] = [];
    const run = async (argv: readonly string[]): Promise<RunResult> => {
      ran.push(argv.join(" "));
      return argv[0] === "ok" ? { code: 0, stdout: "", stderr: "" } : { code: 2, stdout: "", stderr: "no such device" };
    };
    const plan = (steps: Step[]): Plan => ({
      backend: "linux",
      steps,
      shell: "sh",
      device: null,
      peers: { set: [], remove: [] },
      notes: [],
    });
    const warned: string[] = [];
    await executePlan(
      plan([
        { kind: "run", argv: ["kernel"], orElse: ["ok", "userspace"], why: "a" },
        { kind: "run", argv: ["gone"], mayFail: true, why: "b" },
        { kind: "run", argv: ["nft", "-f", "g"], mayFail: true, lostIfFails: "unguarded", why: "c" },
        { kind: "run", argv: ["ok", "guarded"], mayFail: true, lostIfFails: "never said", why: "d" },
      ]),
      { run, warn: (m) => warned.push(m) },
    );
    expect(ran).toEqual(["kernel", "ok userspace", "gone", "nft -f g", "ok guarded"]);
    // A tolerated failure that costs something is told; a harmless one and a success are not.
    expect(warned).toEqual(["unguarded: `nft -f g` exited 2: no such device"]);
    await expect(
      executePlan(plan([{ kind: "run", argv: ["broken", "x"], why: "setting it up" }]), { run }),
    ).rejects.toThrow("setting it up: `broken x` exited 2: no such device");
    await expect(
      executePlan(plan([{ kind: "wait", argv: ["never"], timeoutMs: 50, why: "waiting" }]), {
        run,
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      }),
    ).rejects.toThrow(/waiting: `never` did not succeed within 0.05 s/);
  });
});
