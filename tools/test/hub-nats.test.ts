import type { MeshState } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { hubNatsListen, localAddress } from "../src/lib/hub-nats.js";

const state = (extra: Partial<MeshState>): MeshState => ({
  coordinatorUrl: "http://127.0.0.1:8320",
  machineId: "m1",
  name: "closet",
  owner: "home",
  meshIp: "100.64.0.1",
  prefixLength: 10,
  mtu: 1280,
  interfaceName: "potluck0",
  listenPort: 51820,
  endpoints: [],
  ...extra,
});

describe("where potluck up --hub starts NATS", () => {
  it("listens on every interface for a hub that never joined its mesh, or whose roster names another hub", () => {
    expect(hubNatsListen(undefined, () => true)).toEqual({ kind: "lan" });
    expect(hubNatsListen(state({}), () => true)).toEqual({ kind: "lan" });
    expect(hubNatsListen(state({ hubMeshIp: "100.64.0.9" }), () => true)).toEqual({ kind: "lan" });
  });

  it("listens on the hub's mesh address alone once it is the hub on its own mesh", () => {
    expect(hubNatsListen(state({ hubMeshIp: "100.64.0.1" }), (ip) => ip === "100.64.0.1")).toEqual({
      kind: "mesh",
      address: "100.64.0.1",
    });
  });

  it("says the mesh is down (rather than open NATS to the LAN) while no interface carries that address", () => {
    expect(hubNatsListen(state({ hubMeshIp: "100.64.0.1" }), () => false)).toEqual({
      kind: "mesh-down",
      address: "100.64.0.1",
    });
  });

  it("finds this machine's own loopback address and not a mesh address it does not have", () => {
    expect(localAddress("127.0.0.1")).toBe(true);
    expect(localAddress("100.127.255.254")).toBe(false);
  });
});
