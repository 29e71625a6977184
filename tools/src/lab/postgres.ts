import { execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { appendFileSync, chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { runOk } from "./run.js";

/**
 * A PostgreSQL of the test's own (initdb + pg_ctl from Debian's postgresql package), on its own
 * port and data directory, so a suite can restart "the database" without disturbing the
 * machine's shared server. It listens on loopback and on `listenIps` (the lab's root link, so
 * services in lab namespaces reach it) and trusts the lab's 198.18.0.0/16 — a lab, not a template.
 */
export interface PrivatePostgres {
  port: number;
  dataDir: string;
  /** A connection URL for database `db` through address `ip` (127.0.0.1 from the root namespace). */
  url(db: string, ip?: string): string;
  createDatabase(db: string): Promise<void>;
  /** `pg_ctl start`, waiting until it accepts connections. */
  start(): Promise<void>;
  /** `pg_ctl stop`: "immediate" is a crash (no checkpoint; recovery on the next start). */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Stops and removes the data directory. */
  destroy(): Promise<void>;
}

const pgBin = "/usr/lib/postgresql/15/bin";
/** Every private PostgreSQL lives in `<tmpdir>/potluck-pg-XXXXXX/data`; destroyPostgresAt removes nothing else. */
const rootPrefix = "potluck-pg-";
/** initdb and a first start on a loaded 2-core machine. */
const pgStartS = 120;

/** `port` defaults to one the kernel says is free now. */
export async function startPrivatePostgres(
  options: { port?: number; listenIps?: string[] } = {},
): Promise<PrivatePostgres> {
  const { listenIps = [] } = options;
  const port = options.port ?? (await freePort());
  // PostgreSQL refuses to run as root: the directory belongs to the postgres user.
  const root = mkdtempSync(join(tmpdir(), rootPrefix));
  const dataDir = join(root, "data");
  const { uid, gid } = postgresUser();
  chownSync(root, uid, gid);
  await asPostgres(`initdb ${dataDir}`, [`${pgBin}/initdb`, "-D", dataDir, "-A", "trust", "-U", "postgres"]);
  appendFileSync(dataDir + "/pg_hba.conf", "host all all 198.18.0.0/16 trust\n");
  const listen = ["127.0.0.1", ...listenIps].join(",");
  const pg: PrivatePostgres = {
    port,
    dataDir,
    url: (db, ip = "127.0.0.1") => `postgres://postgres@${ip}:${port}/${db}`,
    async createDatabase(db) {
      await runOk(`creating database ${db}`, [
        `${pgBin}/psql`,
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-U",
        "postgres",
        "-c",
        `create database ${db}`,
      ]);
    },
    async start() {
      await asPostgres(`starting PostgreSQL on ${port}`, [
        `${pgBin}/pg_ctl`,
        "-D",
        dataDir,
        "-l",
        join(root, "log"),
        "-w",
        "-t",
        String(pgStartS),
        "-o",
        `-p ${port} -k ${root} -c listen_addresses=${listen} -c max_connections=200`,
        "start",
      ]);
    },
    async stop(mode = "fast") {
      await asPostgres(`stopping PostgreSQL on ${port}`, [`${pgBin}/pg_ctl`, "-D", dataDir, "-m", mode, "-w", "stop"]);
    },
    destroy: () => destroyPostgresAt(dataDir),
  };
  await pg.start();
  return pg;
}

/**
 * Stops the private PostgreSQL whose data directory is `dataDir` (a crash stop: nothing to keep)
 * and removes its directory; for a server whose starter is gone, known only by a recorded path.
 */
export async function destroyPostgresAt(dataDir: string): Promise<void> {
  const root = dirname(dataDir);
  // The path may come from a state file: never remove anything but a private server's own directory.
  if (basename(dataDir) !== "data" || dirname(root) !== tmpdir() || !basename(root).startsWith(rootPrefix))
    throw new Error(`${dataDir} is not the data directory of a private PostgreSQL`);
  await asPostgres(`stopping PostgreSQL in ${dataDir}`, [
    `${pgBin}/pg_ctl`,
    "-D",
    dataDir,
    "-m",
    "immediate",
    "-w",
    "stop",
  ]).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

async function asPostgres(what: string, argv: string[]): Promise<void> {
  await runOk(what, ["runuser", "-u", "postgres", "--", ...argv], { timeoutMs: (pgStartS + 30) * 1000 });
}

/** A TCP port nothing listens on now (the kernel picks it): suites need no port ranges of their own. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "0.0.0.0", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}
