// A UDP relay that holds every datagram for a fixed time each way: one end listens on loopback for
// the local WireGuard, the other talks to a peer's WireGuard endpoint. Runs inside a lab host (see
// latency.ts). Prints "listening" once both sockets are bound.
//
//   node --import tsx tools/src/lab/udp-delay-relay.ts LISTEN_PORT PEER_HOST PEER_PORT DELAY_MS
import { createSocket, type RemoteInfo } from "node:dgram";

const [listenText = "0", peerHost = "", peerText = "0", delayText = "0"] = process.argv.slice(2);
const peerPort = Number(peerText);
const delayMs = Number(delayText);
/** Datagrams held at once, each way; beyond this they are dropped, as a full queue drops them. */
const inFlightMax = 4_096;
let inFlight = 0;

const local = createSocket("udp4");
const remote = createSocket("udp4");
let wireguard: RemoteInfo | undefined;

function later(send: () => void): void {
  if (inFlight >= inFlightMax) return;
  inFlight++;
  setTimeout(() => {
    inFlight--;
    send();
  }, delayMs);
}

local.on("message", (message, from) => {
  wireguard = from;
  later(() => remote.send(message, peerPort, peerHost));
});
remote.on("message", (message, from) => {
  const to = wireguard;
  if (to === undefined || from.address !== peerHost || from.port !== peerPort) return;
  later(() => local.send(message, to.port, to.address));
});
local.bind(Number(listenText), "127.0.0.1", () => remote.bind(0, () => process.stdout.write("listening\n")));
