import { describe, expect, it } from "vitest";
import { launchdLabel, serviceCommands, ServiceNames } from "../src/service-names.js";

describe("serviceCommands", () => {
  it("names the installed service in each OS's own tool", () => {
    expect(serviceCommands("linux", "sidecar")).toEqual({
      start: "sudo systemctl start potluck-sidecar",
      restart: "sudo systemctl restart potluck-sidecar",
      logs: "journalctl -u potluck-sidecar",
    });
    expect(serviceCommands("darwin", "fwWatcher").restart).toBe(
      "sudo launchctl kickstart -k system/org.potluck.fw-watcher",
    );
    expect(serviceCommands("darwin", "sidecar").logs).toBe("tail -n 100 /Library/Logs/Potluck/potluck-sidecar.log");
    expect(serviceCommands("win32", "sidecar").restart).toBe(
      "Restart-Service potluck-sidecar (PowerShell as administrator)",
    );
  });

  it("every service's commands name it, on every OS and when the OS is unknown", () => {
    for (const key of Object.keys(ServiceNames) as Array<keyof typeof ServiceNames>)
      for (const os of ["linux", "darwin", "win32", undefined]) {
        const commands = serviceCommands(os, key);
        const name = os === "darwin" ? launchdLabel(key) : ServiceNames[key];
        expect(commands.start, `${os} ${key}`).toContain(name);
        expect(commands.restart, `${os} ${key}`).toContain(name);
        expect(commands.logs, `${os} ${key}`).toContain(ServiceNames[key]);
      }
  });
});
