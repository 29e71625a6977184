import { readFileSync } from "node:fs";
import { startSupervised, stopSupervised, type Supervised } from "../lib/supervisor.js";
import { parseEnvFile } from "./env-file.js";
import { parseExecLine, parseUnit } from "./units/systemd.js";

/** Restarts a supervised unit may make before giving up (systemd's StartLimitBurst plays this part). */
export const unitRestartsMax = 5;

/** Exit statuses systemd counts as clean for Restart=on-failure (systemd.service(5)). */
const cleanSignals = new Set(["SIGHUP", "SIGINT", "SIGTERM", "SIGPIPE"]);

export interface SupervisedUnit {
  /** The process running now (a new one after each restart). */
  current(): Supervised;
  restarts(): number;
  stop(): Promise<void>;
}

/**
 * Runs a generated unit's ExecStart= the way systemd would: its EnvironmentFile= read, restarted
 * per Restart= after RestartSec=. For tests of the generated units where no systemd runs.
 */
export function superviseUnit(
  unitText: string,
  options: { name: string; onLine?: (name: string, line: string) => void },
): SupervisedUnit {
  const service = parseUnit(unitText).Service ?? {};
  const argv = parseExecLine(service.ExecStart ?? "");
  const [command, ...args] = argv;
  if (command === undefined) throw new Error(`${options.name}: the unit has no ExecStart=`);
  const policy = service.Restart ?? "no";
  const delayMs = Number(service.RestartSec ?? "0.1") * 1000;
  const envFile = service.EnvironmentFile;
  const env = {
    ...process.env,
    ...(envFile === undefined ? {} : parseEnvFile(readFileSync(envFile.replace(/^-/, ""), "utf8"))),
  };
  let proc = start();
  let restarts = 0;
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;

  function start(): Supervised {
    const started = startSupervised({ name: options.name, command: command ?? "", args, env, onLine: options.onLine });
    void started.exited.then((status) => {
      // As systemd empties the unit's cgroup: what the main process left behind goes with it.
      if (started.child.pid !== undefined) killGroup(started.child.pid);
      if (stopping || !shouldRestart(policy, status) || restarts >= unitRestartsMax) return;
      timer = setTimeout(() => {
        restarts++;
        proc = start();
      }, delayMs);
    });
    return started;
  }

  return {
    current: () => proc,
    restarts: () => restarts,
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await stopSupervised(proc);
    },
  };
}

/** systemd's table: "on-failure" restarts on a non-zero exit or an unclean signal. */
export function shouldRestart(policy: string, status: number | string): boolean {
  if (policy === "always") return true;
  if (policy !== "on-failure") return false;
  return typeof status === "number" ? status !== 0 : !cleanSignals.has(status);
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL"); // the child leads its own group (startSupervised: detached)
  } catch {
    // the group is already empty
  }
}
