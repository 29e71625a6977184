// Bench: heartbeat fan-in across two coordinators on a lab NATS cluster (tools/src/lab/cluster.ts,
// PostgreSQL of the bench's own). --machines simulated machines beat every HeartbeatTiming.intervalMs,
// each beat signed with its own identity key as a sidecar signs it; every coordinator receives every
// beat (no queue group). After a warm-up of one signing window and one interval (each coordinator's
// nonce cache then holds every beat it must remember, as in steady state), for --seconds the CPU
// time of each coordinator process (/proc/PID/stat, user + system) is divided by the beats it
// counted (potluck_coordinator_heartbeats_total): CPU microseconds per beat. The simulator's own CPU
// per beat sent is measured the same way, so a simulator that cannot keep up shows. At the end every
// machine must be online on both coordinators.
//
// --fill says how the machines get on the roster: `enroll` through the coordinators' HTTP API (a
// join token each), or `seed`, their rows written straight into the coordinators' database
// (tools/src/lab/sim-seed.ts). Every enrollment answers with the whole roster, so enrolling costs
// O(N) per machine and 10,000 take tens of minutes; the default is `enroll` up to 1,000
// machines (seedAboveMachines) and `seed` above. What is measured, the beats, is the same either way.
//
//   node --import tsx tools/bench/cluster/heartbeats.ts [--machines 1000] [--seconds 30] [--fill enroll|seed]
//
// Needs root. Prints a table and writes tools/bench/results/cluster-heartbeats.json.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { SigningLimits } from "@potluck/peer";
import {
  CoordinatorAdminHeader,
  CoordinatorLimits,
  HeartbeatTiming,
  natsClusterConnectOptions,
  Roster,
} from "@potluck/protocol";
import {
  clusterDatabases,
  createLab,
  enrollSimMachine,
  seedSimMachines,
  type SimMachine,
  startClusterOnPostgres,
  startSimHeartbeats,
} from "../../src/lab/index.js";
import { repoRoot } from "../../src/lib/repo.js";
import { benchFlags } from "../common/args.js";

const { flags } = benchFlags(process.argv.slice(2), { strings: ["machines", "seconds", "fill"] });
/** Up to this many machines are enrolled one by one by default; above, they are seeded. */
const seedAboveMachines = 1_000;
const machinesN = Number(flags.get("machines") ?? 1_000);
const seconds = Number(flags.get("seconds") ?? 30);
const fill = flags.get("fill") ?? (machinesN > seedAboveMachines ? "seed" : "enroll");
if (!(Number.isInteger(machinesN) && machinesN >= 1 && machinesN <= CoordinatorLimits.rosterMachinesMax))
  usage(`--machines: expected a whole number 1..${CoordinatorLimits.rosterMachinesMax}, got ${flags.get("machines")}`);
if (!(Number.isInteger(seconds) && seconds >= 5 && seconds <= 3_600))
  usage(`--seconds: expected a whole number 5..3600, got ${flags.get("seconds")}`);
if (fill !== "enroll" && fill !== "seed") usage(`--fill: expected enroll or seed, got ${fill}`);
/**
 * Beating before measuring: a beat's nonce is remembered for the signing window, so only after that
 * window and one more interval does every coordinator's nonce cache hold what it holds for good.
 */
const warmupMs = SigningLimits.clockSkewMsMax + HeartbeatTiming.intervalMs;
/** Enrollments in flight at once: each is one transaction under the coordinator's enrollment lock. */
const enrollConcurrency = 8;
/** Clock ticks per second for /proc/PID/stat (USER_HZ, 100 on Linux). */
const ticksPerS = 100;
const hosts = ["n1", "n2", "n3"] as const;

const lab = await createLab({ hosts: [], mesh: false, extraHosts: [...hosts], rootLink: true });
// Nothing of the lab may outlive a cluster that did not come up.
const { pg, cluster } = await startClusterOnPostgres(lab, { hosts: [...hosts] }).catch(async (error: unknown) => {
  await lab.teardown();
  throw error;
});
try {
  const nc = await connect({ ...natsClusterConnectOptions(cluster.natsUrl), maxReconnectAttempts: -1 });
  const specs = Array.from({ length: machinesN }, (_, i) => ({ name: `m${i}`, owner: `house${i % 50}` }));
  const t0 = performance.now();
  const machines =
    fill === "seed"
      ? await seedSimMachines(pg.url(clusterDatabases.coordinator), specs)
      : await enrollAll(cluster.coordinatorUrls, cluster.adminSecret, specs);
  const fillS = (performance.now() - t0) / 1000;
  // Both coordinators list every machine before the first beat (a read makes each reload a seeded roster).
  const listed = await Promise.all(cluster.coordinatorUrls.map((url) => rosterOf(url)));
  for (const [i, roster] of listed.entries())
    if (roster.machines.length !== machinesN)
      throw new Error(`coordinator ${i + 1} lists ${roster.machines.length} machines, not ${machinesN}`);
  const beats = startSimHeartbeats(nc, cluster.prefix, machines);
  await new Promise((r) => setTimeout(r, warmupMs));
  const before = await Promise.all(cluster.coordinators.map((c, i) => sample(c.proc().pid, i)));
  // The bench process is the simulator (signing and publishing every beat), sampled over the same sleep.
  const simBefore = { cpu: process.cpuUsage(), sent: beats.beats(), atMs: performance.now() };
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const simCpu = process.cpuUsage(simBefore.cpu);
  const simSent = beats.beats() - simBefore.sent;
  const simulator = {
    beatsSent: simSent,
    beatsDue: Math.round((machinesN * (performance.now() - simBefore.atMs)) / HeartbeatTiming.intervalMs),
    cpuUsPerBeat: (simCpu.user + simCpu.system) / simSent,
  };
  const after = await Promise.all(cluster.coordinators.map((c, i) => sample(c.proc().pid, i)));
  const online = await Promise.all(cluster.coordinatorUrls.map((url) => onlineCount(url)));
  beats.stop();
  const perCoordinator = before.map((b, i) => {
    const a = after[i] as Sample;
    const beatsN = a.beats - b.beats;
    const coordinator = cluster.coordinators[i];
    return {
      beats: beatsN,
      cpuUsPerBeat: ((a.ticks - b.ticks) / ticksPerS / beatsN) * 1e6,
      // A restart or a failed heartbeat flush during the run makes its figure suspect.
      restarts: coordinator?.restarts() ?? 0,
      flushFailures: (
        coordinator
          ?.proc()
          .output()
          .match(/flushing heartbeat times failed/g) ?? []
      ).length,
    };
  });
  const result = {
    machines: machinesN,
    seconds,
    fill,
    fillS,
    warmupS: warmupMs / 1000,
    perCoordinator,
    simulator,
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
  console.log(
    `${fill === "seed" ? "seeded" : "enrolled"} ${machinesN} in ${fillS.toFixed(1)} s; simulator ${simulator.cpuUsPerBeat.toFixed(0)} µs CPU per beat, ${simulator.beatsSent} of ${simulator.beatsDue} beats due sent; loadavg ${result.loadavg}`,
  );
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
    return (await rosterOf(url)).machines.filter((m) => m.state === "online").length;
  }
} finally {
  await pg.destroy();
  await lab.teardown();
}

async function rosterOf(url: string): Promise<Roster> {
  const res = await fetch(`${url}/v1/roster`);
  if (!res.ok) throw new Error(`GET ${url}/v1/roster: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
  return Roster.parse(await res.json());
}

/** Enrolls through the coordinators' HTTP API, alternating between them, a few at a time. */
async function enrollAll(
  urls: readonly string[],
  adminSecret: string,
  specs: ReadonlyArray<{ name: string; owner: string }>,
): Promise<SimMachine[]> {
  const machines: SimMachine[] = [];
  for (let i = 0; i < specs.length; i += enrollConcurrency)
    machines.push(
      ...(await Promise.all(
        specs
          .slice(i, i + enrollConcurrency)
          .map((spec, k) =>
            enrollSimMachine(urls[(i + k) % urls.length] as string, adminSecret, spec.name, spec.owner),
          ),
      )),
    );
  return machines;
}

function usage(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}
