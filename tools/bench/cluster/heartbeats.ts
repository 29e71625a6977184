// Bench: heartbeat fan-in across two coordinators on a lab NATS cluster (tools/src/lab/cluster.ts,
// PostgreSQL of the bench's own). --machines simulated machines are enrolled through the
// coordinators' HTTP API and beat every HeartbeatTiming.intervalMs, each beat signed with its own
// identity key as a sidecar signs it; every coordinator receives every beat (no queue group). For
// --seconds, the CPU time of each coordinator process (/proc/PID/stat, user + system) is divided by
// the beats it counted (potluck_coordinator_heartbeats_total): CPU microseconds per beat. At the end
// every machine must be online on both coordinators.
//
//   node --import tsx tools/bench/cluster/heartbeats.ts [--machines 1000] [--seconds 30]
//
// Needs root. Prints a table and writes tools/bench/results/cluster-heartbeats.json.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { CoordinatorAdminHeader, natsClusterConnectOptions, Roster } from "@potluck/protocol";
import {
  createLab,
  enrollSimMachine,
  startCluster,
  startPrivatePostgres,
  startSimHeartbeats,
  type SimMachine,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";
import { benchFlags } from "../common/args.js";

const { flags } = benchFlags(process.argv.slice(2), { strings: ["machines", "seconds"] });
const machinesN = Number(flags.get("machines") ?? 1_000);
const seconds = Number(flags.get("seconds") ?? 30);
/** Enrollments in flight at once: each is one transaction under the coordinator's enrollment lock. */
const enrollConcurrency = 8;
/** Clock ticks per second for /proc/PID/stat (USER_HZ, 100 on Linux). */
const ticksPerS = 100;
const hosts = ["n1", "n2", "n3"] as const;

const lab = await createLab({ hosts: [], mesh: false, extraHosts: [...hosts], rootLink: true });
const pg = await startPrivatePostgres({ port: 55_900 + Math.floor(Math.random() * 90), listenIps: [lab.rootIp ?? ""] });
try {
  const tag = randomBytes(3).toString("hex");
  await pg.createDatabase(`coord_${tag}`);
  await pg.createDatabase(`ledger_${tag}`);
  const cluster = await startCluster(lab, {
    hosts: [...hosts],
    coordinatorDatabaseUrl: pg.url(`coord_${tag}`, lab.rootIp ?? ""),
    ledgerDatabaseUrl: pg.url(`ledger_${tag}`, lab.rootIp ?? ""),
  });
  const nc = await connect({ ...natsClusterConnectOptions(cluster.natsUrl), maxReconnectAttempts: -1 });
  const machines: SimMachine[] = [];
  const t0 = performance.now();
  for (let i = 0; i < machinesN; i += enrollConcurrency)
    machines.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(enrollConcurrency, machinesN - i) }, (_, k) =>
          enrollSimMachine(
            cluster.coordinatorUrls[(i + k) % 2] as string,
            cluster.adminSecret,
            `m${i + k}`,
            `house${(i + k) % 50}`,
          ),
        ),
      )),
    );
  const enrollS = (performance.now() - t0) / 1000;
  const beats = startSimHeartbeats(nc, cluster.prefix, machines);
  // One full interval first, so both coordinators have seen every machine before measuring.
  await new Promise((r) => setTimeout(r, 10_000));
  const before = await Promise.all(cluster.coordinators.map((c, i) => sample(c.proc().pid, i)));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = await Promise.all(cluster.coordinators.map((c, i) => sample(c.proc().pid, i)));
  const online = await Promise.all(cluster.coordinatorUrls.map((url) => onlineCount(url)));
  beats.stop();
  const perCoordinator = before.map((b, i) => {
    const a = after[i] as Sample;
    const beatsN = a.beats - b.beats;
    return { beats: beatsN, cpuUsPerBeat: ((a.ticks - b.ticks) / ticksPerS / beatsN) * 1e6 };
  });
  const result = {
    machines: machinesN,
    seconds,
    enrollPerS: machinesN / enrollS,
    perCoordinator,
    onlineOnEach: online,
    loadavg: loadavg()
      .map((l) => l.toFixed(2))
      .join(" "),
  };
  console.table(
    perCoordinator.map((p, i) => ({
      coordinator: i + 1,
      "beats received": p.beats,
      "CPU µs per beat": p.cpuUsPerBeat.toFixed(0),
      online: `${online[i]} of ${machinesN}`,
    })),
  );
  console.log(`enrolled ${machinesN} at ${result.enrollPerS.toFixed(1)}/s; loadavg ${result.loadavg}`);
  mkdirSync(join(repoRoot, "tools/bench/results"), { recursive: true });
  writeFileSync(join(repoRoot, "tools/bench/results/cluster-heartbeats.json"), `${JSON.stringify(result, null, 2)}\n`);
  await nc.close();
  await cluster.stop();

  interface Sample {
    ticks: number;
    beats: number;
  }
  /** CPU ticks of the process (utime + stime) and its heartbeat counter, read together. */
  async function sample(pid: number, index: number): Promise<Sample> {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]);
    const res = await fetch(`${cluster.coordinatorUrls[index]}/metrics`, {
      headers: { [CoordinatorAdminHeader]: cluster.adminSecret },
    });
    const text = await res.text();
    const beatsN = Number(/^potluck_coordinator_heartbeats_total (\d+)/m.exec(text)?.[1] ?? NaN);
    return { ticks, beats: beatsN };
  }
  async function onlineCount(url: string): Promise<number> {
    const roster = Roster.parse(await (await fetch(`${url}/v1/roster`)).json());
    return roster.machines.filter((m) => m.state === "online").length;
  }
} finally {
  await pg.destroy();
  await lab.teardown();
}
