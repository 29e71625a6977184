import { connect } from "node:net";

/** True when something accepts a TCP connection at host:port within `timeoutMs`. */
export function tcpAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** GET `url` and report whether it answered 2xx within `timeoutMs`. */
export async function httpOk(url: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Bytes of a NATS server's greeting read at most; its INFO line is a few hundred. */
const natsInfoBytesMax = 16_384;

/**
 * Whether the NATS server at host:port demands credentials, from the INFO line it greets every
 * client with (`auth_required`); undefined when it does not greet like NATS within `timeoutMs`.
 */
export function natsDemandsAuth(host: string, port: number, timeoutMs = 2000): Promise<boolean | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let greeting = "";
    const done = (answer: boolean | undefined) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.once("error", () => done(undefined));
    socket.on("data", (chunk: Buffer) => {
      greeting += chunk.toString("utf8");
      const end = greeting.indexOf("\r\n");
      if (end < 0) {
        if (greeting.length > natsInfoBytesMax) done(undefined);
        return;
      }
      const line = greeting.slice(0, end);
      if (!line.startsWith("INFO ")) return done(undefined);
      try {
        done((JSON.parse(line.slice(5)) as { auth_required?: boolean }).auth_required === true);
      } catch {
        done(undefined);
      }
    });
  });
}
