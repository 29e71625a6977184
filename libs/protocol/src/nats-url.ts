/**
 * NATS credentials ride in the URL every service already takes (POTLUCK_NATS_URL), the way the
 * nats CLI and Postgres URLs carry them: `nats://TOKEN@hub:4222` for a token,
 * `nats://USER:PASS@hub:4222` for a user. nats.js ignores a URL's credentials, so every connect
 * goes through `natsConnectOptions`, and every log line through `redactNatsUrl`.
 */
export interface NatsUrlOptions {
  /** The server URL without its credentials. */
  servers: string;
  user?: string;
  pass?: string;
  token?: string;
}

/** Splits a NATS URL into the server address and the credentials nats.js takes as options. */
export function natsConnectOptions(url: string): NatsUrlOptions {
  const parsed = parseNatsUrl(url);
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  parsed.username = "";
  parsed.password = "";
  const servers = parsed.href.replace(/\/$/, "");
  if (user === "") return { servers };
  // A URL with a user but no password names a token: the nats CLI reads it the same way.
  return pass === "" ? { servers, token: user } : { servers, user, pass };
}

/**
 * A cluster's servers, as POTLUCK_NATS_URL lists them: `nats://a:4222,nats://b:4222`, the form
 * the nats CLI's `--server` takes. Credentials may ride on any entry; they apply to every server
 * (one cluster, one account), so two entries naming different ones are a mistake, refused here.
 */
export interface NatsClusterOptions {
  /** Every server URL without its credentials, in the order given. */
  servers: string[];
  user?: string;
  pass?: string;
  token?: string;
}

/** At most this many servers in one POTLUCK_NATS_URL: a cluster is 3 or 5; a long list is a paste error. */
export const natsServersMax = 16;

/** The comma-separated entries of a POTLUCK_NATS_URL, trimmed; a single URL is a list of one. */
export function natsServerUrls(url: string): string[] {
  const entries = url
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  if (entries.length === 0) throw new Error("expected at least one nats:// URL");
  if (entries.length > natsServersMax)
    throw new Error(`expected at most ${natsServersMax} NATS servers, got ${entries.length}`);
  return entries;
}

/** Splits a list of NATS URLs into the servers and the one set of credentials nats.js takes as options. */
export function natsClusterConnectOptions(url: string): NatsClusterOptions {
  const parts = natsServerUrls(url).map(natsConnectOptions);
  const withCredentials = parts.filter((p) => p.user !== undefined || p.token !== undefined);
  const first = withCredentials[0];
  for (const other of withCredentials.slice(1))
    if (other.user !== first?.user || other.pass !== first?.pass || other.token !== first?.token)
      throw new Error("the NATS servers in one list must carry the same credentials (or only one of them any)");
  const servers = parts.map((p) => p.servers);
  if (first?.token !== undefined) return { servers, token: first.token };
  if (first?.user !== undefined) return { servers, user: first.user, pass: first.pass ?? "" };
  return { servers };
}

/** The URL (or each URL of a list) with any credentials replaced by `***`, for logs and error messages. */
export function redactNatsUrl(url: string): string {
  if (url.includes(",")) {
    try {
      return natsServerUrls(url).map(redactNatsUrl).join(",");
    } catch {
      return "(unparsable NATS URL)";
    }
  }
  let parsed: URL;
  try {
    parsed = parseNatsUrl(url);
  } catch {
    return "(unparsable NATS URL)";
  }
  if (parsed.username === "" && parsed.password === "") return url;
  parsed.username = "***";
  parsed.password = "";
  return parsed.href.replace(/\/$/, "");
}

/**
 * The nats-server configuration block that demands these credentials, or undefined when the URL
 * has none. It goes into a 0600 file, not onto the command line, where `ps` would show it.
 *
 * One household secret, not a NATS user per machine, on purpose: the hub's nats-server listens on
 * its mesh address (a joined machine reaches it inside WireGuard, and the secret never crosses
 * the LAN), and what a publisher could forge with the secret is already refused downstream:
 * heartbeats and usage events are signed with the publishing machine's identity key and checked
 * against the roster (the coordinator drops a forged heartbeat, the ledger parks a forged usage
 * event). Per-machine users with publish permissions would add that a secret holder cannot read
 * or flood other subjects, at the price of a server config rewritten and reloaded on every roster
 * change; that is the next step if a household hands the secret to machines it does not trust.
 */
export function natsServerAuthConfig(url: string): string | undefined {
  const { user, pass, token } = natsConnectOptions(url);
  const timeout = `timeout: ${natsAuthTimeoutS}`;
  if (token !== undefined) return `authorization { token: ${JSON.stringify(token)}, ${timeout} }\n`;
  if (user !== undefined)
    return `authorization { user: ${JSON.stringify(user)}, password: ${JSON.stringify(pass ?? "")}, ${timeout} }\n`;
  return undefined;
}

/**
 * How long nats-server waits for a client's CONNECT before "Authentication Timeout" (its default
 * is 2 s): a service starting on a loaded machine took longer in the lab, and the client takes
 * that answer as final, not as a reason to retry.
 */
export const natsAuthTimeoutS = 10;

function parseNatsUrl(url: string): URL {
  const parsed = new URL(url);
  if (parsed.protocol !== "nats:" && parsed.protocol !== "tls:")
    throw new Error(`expected a nats:// URL, got ${parsed.protocol}//`);
  return parsed;
}
