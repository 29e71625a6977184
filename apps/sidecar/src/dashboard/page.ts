/**
 * The dashboard: one page on loopback that replaces the green dot. It lists every path this
 * machine can route a prompt to, each layer's state, and for the failing layer its name and fix.
 * Text from the network (a model's failure reason, a peer's name) is only ever set as text,
 * never parsed as HTML.
 */
export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Potluck diagnostics</title>
<link rel="stylesheet" href="/dashboard/style.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header>
  <h1>Can a prompt reach the model right now?</h1>
  <p id="summary" aria-live="polite">checking…</p>
</header>
<main id="reports"></main>
<footer><span id="updated"></span></footer>
</body>
</html>
`;

export const dashboardCss = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 64rem; padding: 1rem; color: #1b1b1b; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
.report { border: 1px solid #ccc; border-radius: 8px; margin: 1rem 0; padding: .75rem 1rem; }
.report.usable { border-color: #2e7d32; }
.report.unusable { border-color: #c62828; }
.report h2 { font-size: 1.05rem; margin: 0 0 .5rem; }
.verdict { font-weight: 600; }
ol.layers { list-style: none; margin: 0; padding: 0; }
li.layer { display: grid; grid-template-columns: 6.5rem 10rem 1fr; gap: .5rem; padding: .2rem 0; }
li.layer .status { font-family: ui-monospace, monospace; text-transform: uppercase; font-size: .8rem; }
li[data-status="ok"] .status { color: #2e7d32; }
li[data-status="warning"] .status, li[data-status="pending"] .status { color: #b26a00; }
li[data-status="failed"] { background: #fdecea; }
li[data-status="failed"] .status { color: #c62828; font-weight: 700; }
li[data-status="suppressed"], li[data-status="skipped"] { color: #777; }
.fix { grid-column: 2 / 4; }
.fix code { background: #f4f4f4; padding: .1rem .3rem; white-space: pre-wrap; word-break: break-word; }
.consent { grid-column: 2 / 4; border: 1px dashed #b26a00; padding: .5rem; margin-top: .25rem; }
button { font: inherit; margin-right: .5rem; }
#updated { color: #777; font-size: .85rem; }
`;

export const dashboardJs = `"use strict";
const refreshMs = 2000;
const el = (tag, attrs = {}, text) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};
let consentOpen = null;

function verdict(report) {
  if (report.usable) return "can serve a prompt";
  if (report.firstFailure) {
    const layer = report.layers.find((l) => l.code === report.firstFailure);
    return "blocked at " + (layer ? layer.title : report.firstFailure);
  }
  return "checking a possible failure…";
}

function renderLayer(report, layer) {
  const li = el("li", { class: "layer", "data-layer": layer.code, "data-status": layer.status });
  li.append(el("span", { class: "status" }, layer.status), el("span", { class: "title" }, layer.title), el("span", { class: "message" }, layer.message));
  if (layer.fix && (layer.status === "failed" || layer.status === "warning" || layer.status === "pending")) {
    const fix = el("div", { class: "fix" });
    fix.append(el("span", {}, "fix: "), el("code", {}, layer.fix));
    li.append(fix);
    if (layer.offerFix === "fw-reapply" && layer.status === "failed") li.append(renderConsent(report));
  }
  return li;
}

function renderConsent(report) {
  const box = el("div", { class: "consent" });
  const key = report.peer + ":fw-reapply";
  if (consentOpen !== key) {
    const offer = el("button", { type: "button", "data-action": "offer-fw-reapply" }, "Reapply the potluck0 firewall rules…");
    offer.addEventListener("click", () => { consentOpen = key; refresh(); });
    box.append(offer);
    return box;
  }
  box.append(el("p", {}, "This asks the firewall watcher on " + report.from + " to insert its three scoped accept rules for the mesh interface. It never flushes rules or changes a VPN's policy. Go ahead?"));
  const yes = el("button", { type: "button", "data-action": "confirm-fw-reapply" }, "Yes, reapply");
  const no = el("button", { type: "button", "data-action": "cancel-fw-reapply" }, "Cancel");
  const result = el("p", { class: "fix-result", role: "status" });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    result.textContent = "reapplying…";
    try {
      const res = await fetch("/diagnostics/fix", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ action: "fw-reapply", consent: true }) });
      const body = await res.json();
      result.textContent = body.message || (body.error && body.error.message) || ("HTTP " + res.status);
      consentOpen = null;
      setTimeout(refresh, 500);
    } catch (error) {
      result.textContent = "could not reach the sidecar: " + error;
    }
  });
  no.addEventListener("click", () => { consentOpen = null; refresh(); });
  box.append(yes, no, result);
  return box;
}

function renderReport(report) {
  const section = el("section", { class: "report " + (report.usable ? "usable" : "unusable"), "data-peer": report.peer || report.from, "data-usable": String(report.usable) });
  const name = report.peer === report.from ? report.from + " (this machine)" : report.from + " → " + report.peer;
  const h2 = el("h2");
  h2.append(el("span", { class: "name" }, name + ": "), el("span", { class: "verdict" }, verdict(report)));
  section.append(h2);
  const list = el("ol", { class: "layers" });
  for (const layer of report.layers) list.append(renderLayer(report, layer));
  section.append(list);
  return section;
}

async function refresh() {
  const summary = document.getElementById("summary");
  try {
    const res = await fetch("/diagnostics", { cache: "no-store" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const overview = await res.json();
    const main = document.getElementById("reports");
    main.replaceChildren(...overview.reports.map(renderReport));
    const usable = overview.reports.filter((r) => r.usable).length;
    summary.textContent = usable + " of " + overview.reports.length + " paths can serve a prompt";
    document.getElementById("updated").textContent = "updated " + new Date(overview.generatedAt).toLocaleTimeString();
  } catch (error) {
    summary.textContent = "the sidecar did not answer: " + error.message;
  }
}

refresh();
setInterval(() => { if (consentOpen === null) refresh(); }, refreshMs);
`;
