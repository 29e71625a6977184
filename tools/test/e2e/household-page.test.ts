import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLab,
  type Lab,
  type LabHost,
  rosterSidecarPort,
  seedRosterHousehold,
  startRosterSidecar,
} from "../../src/lab/index.js";
import { writeTinyModel } from "../../src/model/tiny.js";
import { repoRoot } from "../../src/lib/repo.js";

// The household page against two real sidecars in the lab: mac serves kitchen-tiny, linux serves
// garage-tiny (two tiny TEST models, nothing loaded at start). Chromium runs inside mac's
// namespace, so it opens mac's page on loopback as a person on that machine would, through the
// loopback guard. The page lists both machines and both models; the picker picks linux's model;
// the prompt goes through mac's own chat endpoint, routing sends it to linux, and the reply streams
// with its footer. Screenshots: .test-results/household-page/.

const port = rosterSidecarPort;
const models = { mac: "kitchen-tiny", linux: "garage-tiny" } as const;
const shots = join(repoRoot, ".test-results/household-page");
let lab: Lab;
let mac: LabHost;
let linux: LabHost;
let browser: Browser;

const nameOf = (host: LabHost) => host.name as "mac" | "linux";

async function startSidecar(host: LabHost): Promise<void> {
  const modelDir = join(host.runDir, "models");
  writeTinyModel(join(modelDir, `${models[nameOf(host)]}.gguf`), nameOf(host) === "mac" ? 2 : 3);
  await startRosterSidecar(host, { POTLUCK_MODELS: modelDir });
}

/** Chromium started inside `host`'s namespace: its loopback is that machine's. */
async function browserIn(host: LabHost): Promise<Browser> {
  const wrapper = join(host.runDir, "chromium-in-host.sh");
  // Playwright talks to the browser over inherited pipes, which `ip netns exec` passes through.
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${host.netns} /usr/bin/chromium "$@"\n`, { mode: 0o755 });
  return chromium.launch({
    executablePath: wrapper,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
  });
}

beforeAll(async () => {
  lab = await createLab({ hosts: ["mac", "linux"] });
  mac = lab.host("mac");
  linux = lab.host("linux");
  seedRosterHousehold([mac, linux]);
  mkdirSync(shots, { recursive: true });
  await Promise.all([startSidecar(mac), startSidecar(linux), (async () => (browser = await browserIn(mac)))()]);
}, 400_000);

afterAll(async () => {
  await browser?.close();
  await lab?.teardown();
});

/** The text of every cell of the row `selector`, once it exists. */
async function rowText(page: Page, selector: string): Promise<Record<string, string>> {
  const row = page.locator(selector);
  await row.waitFor({ timeout: 60_000 });
  return row
    .locator("td")
    .evaluateAll((tds) => Object.fromEntries(tds.map((td) => [td.className, td.textContent ?? ""])));
}

describe("the household page on mac, in headless Chromium, against a two-machine lab", () => {
  it("lists both machines and both machines' models with their state, and streams a reply from linux's model", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const response = await page.goto(`http://127.0.0.1:${port}/dashboard`);
    expect(response?.status()).toBe(200);
    await page.locator('#machines tr[data-machine="linux"][data-status="ready"]').waitFor({ timeout: 60_000 });

    const machines = await page.locator("#machines tbody tr").evaluateAll((trs) => trs.map((tr) => tr.dataset.machine));
    expect(machines).toEqual(["mac", "linux"]);
    const macRow = await rowText(page, '#machines tr[data-machine="mac"]');
    expect(macRow).toMatchObject({ relation: "this machine", state: "ready" });
    expect(macRow.hardware).toMatch(/^linux x64 · \d+ CPUs? · [\d.]+ GiB RAM · no GPU in use$/);
    const linuxRow = await rowText(page, '#machines tr[data-machine="linux"]');
    expect(linuxRow).toMatchObject({ relation: "own machine", state: "ready" });
    expect(linuxRow.count).toMatch(/^1 \([01] loaded\)$/);

    // Each model where it lives, with its state (the diagnosis's first-token check may be loading it).
    for (const [host, id] of Object.entries(models)) {
      const row = page.locator(`#models tr[data-model="${id}"]`);
      const cells = await rowText(page, `#models tr[data-model="${id}"]`);
      expect(cells.model).toBe(`${id} (TEST MODEL: random weights)`);
      expect(cells.machine).toBe(`${host} (${host === "mac" ? "this machine" : "own machine"})`);
      expect(cells.source).toBe("configured");
      const state = await row.getAttribute("data-state");
      expect(["available", "loading", "ready"]).toContain(state);
      expect(cells.state).toMatch(/^(available \(not loaded\)|loading \d+%|ready \(loaded\))$/);
    }
    await page.screenshot({ path: join(shots, "1-household.png"), fullPage: true });

    // The picker offers the other machine's model; the prompt goes through mac's chat endpoint.
    await expect(page.locator(`#chat-model option[value="${models.linux}"]`).textContent()).resolves.toMatch(
      new RegExp(`^${models.linux} — linux (available|loading|ready)$`),
    );
    await page.selectOption("#chat-model", models.linux);
    await page.fill("#chat-max-tokens", "8");
    await page.fill("#chat-prompt", "Hello from the household page");
    await page.click("#chat-send");
    const footer = page.locator('#chat-footer[data-served-by="linux"]');
    await footer.waitFor({ timeout: 180_000 });
    await expect(footer.textContent()).resolves.toMatch(
      /^— served by linux \(own machine\) · garage-tiny \(TEST MODEL: random weights\) · 8 tokens · [\d.]+ s$/,
    );
    expect(await footer.getAttribute("data-route")).toBe("own");
    expect((await page.locator("#chat-reply").textContent())?.length).toBeGreaterThan(0);
    await expect(page.locator("#chat-progress").textContent()).resolves.toBe("");

    // Served: linux's model is loaded now, and the page shows it on its next refresh.
    await page.locator(`#models tr[data-model="${models.linux}"][data-machine="linux"][data-state="ready"]`).waitFor({
      timeout: 30_000,
    });
    // The choice survives the page's refreshes (the picker is rebuilt as the states change).
    expect(await page.inputValue("#chat-model")).toBe(models.linux);
    await expect(page.locator('section.report[data-peer="linux"]').count()).resolves.toBe(1);
    await page.screenshot({ path: join(shots, "2-reply.png"), fullPage: true });
    await page.close();
  }, 300_000);
});
