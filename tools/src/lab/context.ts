import type { HostRuntime } from "./host.js";
import type { LabHost, LabProcess } from "./types.js";
import type { WgKeys, WgPeer } from "./wireguard.js";

/** Everything the lab and its fault injectors know about one host. */
export interface HostCtx {
  host: LabHost;
  rt: HostRuntime;
  index: number;
  lanPort: string;
  keys: WgKeys | null;
  peers: WgPeer[];
  wg: LabProcess | null;
}

export interface LabCtx {
  id: string;
  lanNetns: string;
  underlayCidr: string;
  rootIp: string | null;
  hosts: Map<string, HostCtx>;
  get(name: string): HostCtx;
}
