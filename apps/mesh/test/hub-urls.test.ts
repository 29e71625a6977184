import type { MeshState } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { coordinatorUrlAfterJoin, hubUrlAfterJoin } from "../src/join.js";

const state = (extra: Partial<MeshState> = {}): MeshState => ({
  coordinatorUrl: "http://192.168.1.10:8320",
  machineId: "m1",
  name: "box",
  owner: "home",
  meshIp: "100.64.0.2",
  prefixLength: 10,
  mtu: 1420,
  interfaceName: "potluck0",
  listenPort: 51820,
  endpoints: [],
  ...extra,
});

describe("the hub's URLs after a join", () => {
  it("keeps the enrollment URLs while no hub is on the mesh", () => {
    expect(coordinatorUrlAfterJoin(state())).toBe("http://192.168.1.10:8320");
    expect(hubUrlAfterJoin(state(), "nats://s3cret@192.168.1.10:4222")).toBe("nats://s3cret@192.168.1.10:4222");
  });

  it("moves the coordinator and the hub's NATS to its mesh address, keeping port and secret", () => {
    const joined = state({ hubMeshIp: "100.64.0.1" });
    expect(coordinatorUrlAfterJoin(joined)).toBe("http://100.64.0.1:8320");
    expect(hubUrlAfterJoin(joined, "nats://s3cret@192.168.1.10:4222")).toBe("nats://s3cret@100.64.0.1:4222");
    expect(hubUrlAfterJoin(joined, "nats://ann:pw@192.168.1.10:4222")).toBe("nats://ann:pw@100.64.0.1:4222");
  });

  it("leaves a NATS that is not the hub's (another host) as given", () => {
    const joined = state({ hubMeshIp: "100.64.0.1" });
    expect(hubUrlAfterJoin(joined, "nats://nats.example:4222")).toBe("nats://nats.example:4222");
  });

  it("moves a hub enrolled through by name, the way it was named", () => {
    const joined = state({ coordinatorUrl: "http://hub.lan:8320", hubMeshIp: "100.64.0.1" });
    expect(coordinatorUrlAfterJoin(joined)).toBe("http://100.64.0.1:8320");
    expect(hubUrlAfterJoin(joined, "nats://tok@hub.lan:4222")).toBe("nats://tok@100.64.0.1:4222");
  });
});
