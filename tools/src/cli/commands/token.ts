import { readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveDataDir } from "@potluck/service";
import { Defaults } from "@potluck/protocol";
import { coordinatorClient, CoordinatorError } from "@potluck/mesh";
import { CliError, type Command } from "../command.js";

const usage = `Usage: potluck token create [--reusable] [--ttl 1h] [--owner NAME] [--coordinator URL]
                            [--admin-secret SECRET] [--data-dir DIR] [--json]

Creates a join token for \`potluck join\`. Single-use and valid for an hour unless --reusable or
--ttl (seconds, or 30m, 12h, 7d; at most 7d) say otherwise. Every machine that joins with it
belongs to --owner: by default the hub's own household (the coordinator's POTLUCK_OWNER); a guest
of another owner gets a token made with --owner GUESTNAME. The coordinator is
POTLUCK_COORDINATOR_URL or http://127.0.0.1:${Defaults.coordinatorPort}. Creating tokens needs the
coordinator's admin secret: --admin-secret, POTLUCK_COORDINATOR_ADMIN_SECRET, or the file
DATA_DIR/coordinator/admin-secret the coordinator wrote when run with this data dir.`;

export const tokenCommand: Command = {
  name: "token",
  summary: "create a join token (potluck token create)",
  usage,
  flags: { strings: ["ttl", "owner", "coordinator", "admin-secret", "data-dir"], booleans: ["reusable", "json"] },
  async run(_argv, { flags, positionals }) {
    if (positionals[0] !== "create" || positionals.length !== 1)
      throw new CliError(`expected "potluck token create"; see potluck token --help`, 2);
    const dataDir = resolveDataDir(flags.get("data-dir"));
    const url =
      flags.get("coordinator") ??
      process.env.POTLUCK_COORDINATOR_URL ??
      `http://127.0.0.1:${process.env.POTLUCK_COORDINATOR_PORT ?? Defaults.coordinatorPort}`;
    const adminSecret =
      flags.get("admin-secret") ?? process.env.POTLUCK_COORDINATOR_ADMIN_SECRET ?? readSecretFile(dataDir);
    const ttl = flags.get("ttl");
    try {
      const created = await coordinatorClient(url, { adminSecret }).createToken({
        reusable: flags.has("reusable"),
        ...(ttl === undefined ? {} : { ttlS: parseTtlS(ttl) }),
        ...(flags.has("owner") ? { owner: flags.get("owner") } : {}),
      });
      if (flags.has("json")) process.stdout.write(`${JSON.stringify(created)}\n`);
      else process.stdout.write(`${created.token}\n`);
      if (!flags.has("json"))
        process.stderr.write(
          `potluck: ${created.reusable ? "reusable" : "single-use"} token, expires ${created.expiresAt}; on the new machine: potluck join ${url} ${created.token}\n`,
        );
      return 0;
    } catch (error) {
      if (error instanceof CoordinatorError) throw new CliError(error.message);
      throw error;
    }
  },
};

/** "3600", "90s", "30m", "12h", "7d" → seconds. */
export function parseTtlS(text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (match === null)
    throw new CliError(`--ttl ${JSON.stringify(text)}: expected seconds or a number with s, m, h or d`, 2);
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as "" | "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}

/**
 * Where the coordinator keeps its admin secret (adminSecretPath in apps/coordinator/src/admin.ts);
 * spelled out here so the CLI does not load the coordinator's database drivers to read one file.
 */
function readSecretFile(dataDir: string): string {
  const path = join(dataDir, "coordinator", "admin-secret");
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    throw new CliError(
      `no admin secret: ${path} is not readable; pass --admin-secret or set POTLUCK_COORDINATOR_ADMIN_SECRET`,
    );
  }
}
