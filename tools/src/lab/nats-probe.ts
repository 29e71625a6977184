import { hubPorts } from "./hub.js";
import type { LabHost } from "./types.js";

/**
 * What a NATS client without credentials gets from `target`:4222, seen from `from`: "answered"
 * (with the server's words in `seen`, e.g. its INFO then -ERR 'Authorization Violation'), an errno
 * such as "ECONNREFUSED" (nothing listens there), "timeout" (packets dropped) or "closed". A raw
 * client in node, so the attacker's side needs no library: it connects, says CONNECT, publishes
 * two bytes on `subject` and pings.
 */
export async function probeNats(
  from: LabHost,
  target: string,
  subject: string,
): Promise<{ what: string; seen: string }> {
  const script = `
    const s = require("node:net").connect(${hubPorts.nats}, ${JSON.stringify(target)});
    let seen = "";
    const done = (what) => { console.log(JSON.stringify({ what, seen })); process.exit(0); };
    s.setTimeout(5000, () => done("timeout"));
    s.on("error", (e) => done(e.code));
    s.on("data", (d) => {
      seen += d.toString();
      if (seen.startsWith("INFO") && !seen.includes("CONNECT-SENT")) {
        seen += "CONNECT-SENT";
        s.write('CONNECT {"verbose":false,"pedantic":false}\\r\\nPUB ${subject} 2\\r\\nhi\\r\\nPING\\r\\n');
      }
      if (/-ERR|PONG/.test(seen)) done("answered");
    });
    s.on("close", () => done("closed"));`;
  const res = await from.exec([process.execPath, "-e", script], { timeoutMs: 30_000 });
  return JSON.parse(res.stdout.trim()) as { what: string; seen: string };
}
