import type { MeshState } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { hubUrlsOverMesh } from "../src/peer/coordinator-key.js";

// After its join a machine reaches the hub at the hub's mesh address: the sidecar moves the URLs
// its settings give for the hub (as the walkthrough writes them, with the hub's LAN address) there.
const joined = {
  coordinatorUrl: "http://192.168.1.10:8320",
  hubMeshIp: "100.64.0.1",
} as MeshState;

describe("hubUrlsOverMesh", () => {
  it("moves the coordinator and NATS named by the hub's LAN address to its mesh address, secret kept", () => {
    const said: string[] = [];
    const config = {
      POTLUCK_COORDINATOR_URL: "http://192.168.1.10:8320",
      POTLUCK_NATS_URL: "nats://s3cret@192.168.1.10:4222",
      POTLUCK_MACHINE: "mac",
    };
    expect(hubUrlsOverMesh(config, joined, (m) => said.push(m))).toEqual({
      POTLUCK_COORDINATOR_URL: "http://100.64.0.1:8320",
      POTLUCK_NATS_URL: "nats://s3cret@100.64.0.1:4222",
      POTLUCK_MACHINE: "mac",
    });
    expect(said).toHaveLength(1);
    expect(said[0]).toContain("reaching the hub at its mesh address 100.64.0.1");
    expect(said[0]).not.toContain("s3cret");
  });

  it("moves each listed NATS server that is the hub, and leaves other servers and hosts alone", () => {
    const config = { POTLUCK_NATS_URL: "nats://t@192.168.1.10:4222,nats://t@nats2.lan:4222" };
    expect(hubUrlsOverMesh(config, joined, () => undefined).POTLUCK_NATS_URL).toBe(
      "nats://t@100.64.0.1:4222,nats://t@nats2.lan:4222",
    );
    const elsewhere = {
      POTLUCK_COORDINATOR_URL: "http://hub.example:8320",
      POTLUCK_NATS_URL: "nats://nats.example:4222",
    };
    const said: string[] = [];
    expect(hubUrlsOverMesh(elsewhere, joined, (m) => said.push(m))).toBe(elsewhere);
    expect(said).toEqual([]);
  });

  it("changes nothing before a join, or when the hub is not on the mesh", () => {
    const config = {
      POTLUCK_COORDINATOR_URL: "http://192.168.1.10:8320",
      POTLUCK_NATS_URL: "nats://192.168.1.10:4222",
    };
    expect(hubUrlsOverMesh(config, undefined, () => undefined)).toBe(config);
    const noHub = { coordinatorUrl: "http://192.168.1.10:8320" } as MeshState;
    expect(hubUrlsOverMesh(config, noHub, () => undefined)).toBe(config);
  });
});
