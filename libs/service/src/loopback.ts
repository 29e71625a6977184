/**
 * Loopback checks shared by every service that serves some routes only to its own machine.
 * Two different questions: who connected (the TCP peer address) and which name the request was
 * sent to (the Host header). A DNS-rebinding page connects from loopback under a foreign name, so
 * routes that change something check both.
 */

/** Host names a request to this machine's loopback carries; anything else is a rebound name or a misroute. */
export const loopbackHosts: readonly string[] = ["127.0.0.1", "localhost", "[::1]"];

/** Whether a TCP peer address (as node:net reports it) is this machine's loopback. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127.");
}

const plainLoopbackHost = /^(?:127\.0\.0\.1|localhost|\[::1\])(?::(\d{1,5}))?$/;

/** Whether a Host header (with or without a port) names loopback; a missing one is not assumed to. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  // The forms clients send (the name, perhaps a port) are answered without a URL parser, which
  // every local request would otherwise pay before its prompt starts; anything else is parsed.
  const plain = plainLoopbackHost.exec(host);
  if (plain !== null && (plain[1] === undefined || Number(plain[1]) <= 65_535)) return true;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  return loopbackHosts.includes(hostname);
}
