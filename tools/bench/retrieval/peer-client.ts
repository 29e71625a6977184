// Runs INSIDE a lab host (its own network namespace): makes HTTP requests to another host's
// sidecar, signed with a machine identity when asked, and prints one JSON line. The bench and the
// memory e2e test drive it through LabHost.exec with the job on stdin.
import { readFileSync } from "node:fs";
import { privateKeyFromPem, signRequest } from "@potluck/peer";
import { medianOf, timeCalls, type Summary } from "../common/stats.js";

export interface ClientRequest {
  method: string;
  path: string;
  body?: unknown;
  signed: boolean;
}

export type ClientJob =
  | { mode: "requests"; url: string; machine: string; target: string; keyPem: string; requests: ClientRequest[] }
  | {
      mode: "time";
      url: string;
      machine: string;
      target: string;
      keyPem: string;
      request: ClientRequest;
      samples: number;
      warmup: number;
      repeats: number;
    };

export interface ClientAnswer {
  status: number;
  body: unknown;
}

/** Requests from one host never wait longer than this each; a hung peer is an answer too. */
const requestTimeoutMs = 20_000;

/** Parsed once: a sidecar holds its identity key as a KeyObject, it does not re-read PEM per request. */
let privateKey: ReturnType<typeof privateKeyFromPem> | undefined;

async function send(job: ClientJob, request: ClientRequest): Promise<ClientAnswer> {
  const text = request.body === undefined ? undefined : JSON.stringify(request.body);
  const headers: Record<string, string> = text === undefined ? {} : { "content-type": "application/json" };
  if (request.signed) {
    privateKey ??= privateKeyFromPem(job.keyPem);
    Object.assign(
      headers,
      signRequest(
        { method: request.method, path: request.path, body: text ?? "", target: job.target },
        { machine: job.machine, privateKey },
      ),
    );
  }
  try {
    const res = await fetch(`${job.url}${request.path}`, {
      method: request.method,
      headers,
      body: text,
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    const raw = await res.text();
    let body: unknown = raw;
    try {
      body = JSON.parse(raw);
    } catch {
      // Not JSON: keep the text.
    }
    return { status: res.status, body };
  } catch (error) {
    return {
      status: 0,
      body:
        error instanceof Error
          ? `${error.message} ${String((error.cause as Error | undefined)?.message ?? "")}`
          : String(error),
    };
  }
}

async function run(job: ClientJob): Promise<unknown> {
  if (job.mode === "requests") {
    const answers: ClientAnswer[] = [];
    for (const request of job.requests) answers.push(await send(job, request));
    return answers;
  }
  const repeats: Summary[] = [];
  for (let r = 0; r < job.repeats; r++) {
    repeats.push(
      await timeCalls(
        async () => {
          const answer = await send(job, job.request);
          if (answer.status !== 200)
            throw new Error(`timed request answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 200)}`);
        },
        { samples: job.samples, warmup: job.warmup },
      ),
    );
  }
  return medianOf(repeats);
}

const job = JSON.parse(readFileSync(0, "utf8")) as ClientJob;
process.stdout.write(`${JSON.stringify(await run(job))}\n`);
