import { spawn } from "node:child_process";

export interface NftResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `nft` with the given arguments. Injected everywhere, so the same
 * firewall code runs against the host's nftables in production and inside a throwaway network
 * namespace (`ip netns exec NS nft …`) in tests and benches.
 */
export type NftRunner = (args: readonly string[]) => Promise<NftResult>;

/** A ruleset of a busy Docker/Kubernetes host is a few MB of JSON; 64 MiB leaves room and still bounds memory. */
const outputBytesMax = 64 * 1024 * 1024;
/** nft answers in milliseconds; a hung nft (kernel lock, stuck namespace) must not stall the watcher forever. */
const nftTimeoutMs = 15_000;

export class NftError extends Error {
  override name = "NftError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A runner that spawns `prefix… args…`, e.g. ["nft"] or ["ip", "netns", "exec", "ns1", "nft"]. */
export function commandRunner(prefix: readonly string[] = ["nft"], { timeoutMs = nftTimeoutMs } = {}): NftRunner {
  const [command, ...fixedArgs] = prefix;
  if (command === undefined) throw new TypeError("commandRunner: empty command prefix");
  return (args) =>
    new Promise((resolve, reject) => {
      const child = spawn(command, [...fixedArgs, ...args], { stdio: ["ignore", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let bytes = 0;
      const collect = (into: Buffer[]) => (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > outputBytesMax) child.kill("SIGKILL");
        else into.push(chunk);
      };
      child.stdout.on("data", collect(out));
      child.stderr.on("data", collect(err));
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(new NftError(`running ${command}: ${error.message}`, { cause: error }));
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        if (signal !== null) {
          const why =
            bytes > outputBytesMax
              ? `output over ${outputBytesMax} bytes`
              : `killed by ${signal} (timeout ${timeoutMs} ms?)`;
          reject(new NftError(`running ${prefix.join(" ")} ${args.join(" ")}: ${why}`));
          return;
        }
        resolve({
          code: code ?? 1,
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
        });
      });
    });
}

/** Runs nft and throws NftError (naming the action) unless it exits 0. */
export async function runNft(runner: NftRunner, action: string, args: readonly string[]): Promise<string> {
  let result: NftResult;
  try {
    result = await runner(args);
  } catch (error) {
    throw new NftError(`${action}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  if (result.code !== 0) {
    const reason = result.stderr.trim().split("\n").slice(0, 3).join("; ") || `exit code ${result.code}`;
    throw new NftError(`${action}: nft exited ${result.code}: ${reason}`);
  }
  return result.stdout;
}
