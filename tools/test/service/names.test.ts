import { buildRegistry } from "@potluck/diagnostics";
import { ServiceNames } from "@potluck/protocol";
import { describe, expect, it } from "vitest";
import { planServices } from "../../src/service/plan.js";
import { hostOf } from "./fakes.js";

describe("doctor's fixes name the services exactly as installed", () => {
  it("every systemctl/journalctl in a fix names a unit potluck service install writes", () => {
    const installed = new Set(planServices(hostOf("linux"), { hub: true }).services.map((s) => s.name));
    expect(installed).toEqual(new Set(Object.values(ServiceNames)));
    const ctx = {
      from: "mac",
      peer: "linux",
      interfaceName: "potluck0",
      localPort: 8321,
      peerPort: 8321,
      meshIp: "100.64.0.2",
      // Both Linux: the fixes then name systemd units (service-commands.test.ts covers the other OSes).
      fromOs: "linux",
      peerOs: "linux",
      detail: { firewallHost: "linux", peerWatcherError: "nft failed" },
    };
    const named: string[] = [];
    for (const check of buildRegistry().ordered())
      for (const spec of Object.values(check.failures)) {
        for (const match of spec
          .fix(ctx)
          .matchAll(/(?:systemctl (?:start|restart|enable --now)|journalctl -u) ([\w-]+)/g))
          named.push(match[1] ?? "");
      }
    expect(named.length).toBeGreaterThan(5);
    for (const name of named) expect(installed, name).toContain(name);
  });
});
