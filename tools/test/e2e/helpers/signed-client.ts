// Runs INSIDE a lab host (its own network namespace) under tsx: the HTTP calls a machine makes,
// signed with that machine's real identity key where asked, exactly as an attacker holding the key
// would make them. The job comes on stdin, one JSON line of answers goes to stdout. The attack
// suite drives it through LabHost.exec (see `signedCalls` in attack-lab.ts).
import { Agent, request } from "node:http";
import { privateKeyFromPem, signRequest } from "@potluck/peer";

export interface SignedCall {
  /** Base URL, e.g. http://100.64.0.2:8321 */
  url: string;
  method: string;
  /** Path with query, as signed and sent. */
  path: string;
  body?: string;
  /** Sign as `machine` for `target`; `aheadMs` moves the signed timestamp away from now. */
  sign?: { machine: string; target: string; aheadMs?: number };
  /** Sent as they are, after the signature headers (a replay sends recorded ones here). */
  headers?: Record<string, string>;
}

export interface SignedJob {
  keyPem: string;
  calls: SignedCall[];
  /** `count` copies of `call`, each freshly signed, `concurrency` at a time; statuses are counted. */
  flood?: { call: SignedCall; count: number; concurrency: number };
}

export interface CallAnswer {
  status: number;
  body: unknown;
}

export interface JobAnswer {
  answers: CallAnswer[];
  flood?: Record<string, number>;
  /** How long the flood took, first call sent to last answer. */
  floodMs?: number;
}

/** A hung service is an answer too: no call waits longer than this. */
const callTimeoutMs = 30_000;
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
/** Parsed once: PEM parsing per call would dominate a flood. */
let privateKey: ReturnType<typeof privateKeyFromPem> | undefined;

async function send(call: SignedCall, keyPem: string): Promise<CallAnswer> {
  const body = call.body ?? "";
  const headers: Record<string, string> = call.body === undefined ? {} : { "content-type": "application/json" };
  if (call.sign !== undefined) {
    const signed = signRequest(
      { method: call.method, path: call.path, body, target: call.sign.target },
      { machine: call.sign.machine, privateKey: (privateKey ??= privateKeyFromPem(keyPem)) },
      { nowMs: Date.now() + (call.sign.aheadMs ?? 0) },
    );
    Object.assign(headers, signed);
  }
  Object.assign(headers, call.headers ?? {});
  // node:http with a keep-alive pool rather than fetch: a flood must land 10,000 calls within the
  // 60 s signing window on a loaded machine, and fetch's streams cost several times as much.
  return new Promise<CallAnswer>((resolve) => {
    const req = request(
      `${call.url}${call.path}`,
      { method: call.method, headers, agent, timeout: callTimeoutMs },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (c: Buffer) => parts.push(c));
        res.on("end", () => {
          const text = Buffer.concat(parts).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // Not JSON (a stream): keep the text.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on("error", (error) => resolve({ status: 0, body: error.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${callTimeoutMs} ms`)));
    req.on("error", (error) => resolve({ status: 0, body: error.message }));
    req.end(call.body === undefined ? undefined : body);
  });
}

async function flood(job: SignedJob): Promise<Record<string, number>> {
  const spec = job.flood;
  const counts: Record<string, number> = {};
  if (spec === undefined) return counts;
  let next = 0;
  const worker = async () => {
    while (next < spec.count) {
      next++;
      const { status, body } = await send(spec.call, job.keyPem);
      const code = (body as { error?: { code?: string } } | undefined)?.error?.code;
      const key = code === undefined ? String(status) : `${status} ${code}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  return counts;
}

const chunks: Buffer[] = [];
for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
const job = JSON.parse(Buffer.concat(chunks).toString("utf8")) as SignedJob;
const out: JobAnswer = { answers: [] };
if (job.flood !== undefined) {
  const started = Date.now();
  out.flood = await flood(job);
  out.floodMs = Date.now() - started;
}
for (const call of job.calls) out.answers.push(await send(call, job.keyPem));
process.stdout.write(`${JSON.stringify(out)}\n`);
