import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { exited, randomPort } from "./proc.js";

const run = promisify(execFile);

/**
 * A private nats-server with JetStream in a temp dir, so a test may restart it without touching
 * the shared server other engineers' tests use.
 */
export class PrivateNats {
  readonly port = randomPort();
  readonly dir = mkdtempSync(join(tmpdir(), "ledger-nats-"));
  private child: ChildProcess | undefined;

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  start(): void {
    this.child = spawn("nats-server", ["-js", "-sd", this.dir, "-a", "127.0.0.1", "-p", String(this.port)], {
      stdio: "ignore",
    });
  }

  async stop(): Promise<void> {
    if (this.child === undefined) return;
    this.child.kill("SIGTERM");
    await exited(this.child);
    this.child = undefined;
  }
}

/**
 * A private PostgreSQL cluster (initdb as the postgres user, since the server refuses root), on a
 * random port, restartable mid-test.
 */
export class PrivatePostgres {
  readonly port = randomPort();
  readonly dir = mkdtempSync(join(tmpdir(), "ledger-pg-"));
  private readonly data = join(this.dir, "data");

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async init(): Promise<void> {
    mkdirSync(this.data, { recursive: true });
    const { uid, gid } = await postgresIds();
    chownSync(this.dir, uid, gid);
    chownSync(this.data, uid, gid);
    await this.asPostgres(["initdb", "-D", this.data, "-U", "postgres", "--auth=trust", "--no-sync"]);
  }

  async start(): Promise<void> {
    await this.asPostgres([
      "pg_ctl",
      "-D",
      this.data,
      "-l",
      join(this.dir, "log"),
      "-w",
      "-t",
      "60",
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      "start",
    ]);
  }

  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    await this.asPostgres(["pg_ctl", "-D", this.data, "-w", "-t", "60", "-m", mode, "stop"]).catch(() => undefined);
  }

  private async asPostgres(args: string[]): Promise<void> {
    const asRoot = process.getuid?.() === 0;
    const [cmd, ...rest] = asRoot ? ["runuser", "-u", "postgres", "--", ...args] : args;
    await run(cmd ?? "", rest, { timeout: 120_000 });
  }
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  if (process.getuid?.() !== 0) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const { stdout: uid } = await run("id", ["-u", "postgres"]);
  const { stdout: gid } = await run("id", ["-g", "postgres"]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}
