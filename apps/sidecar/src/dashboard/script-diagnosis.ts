/**
 * The page's per-path diagnosis: every path this machine can route a prompt to, each layer's
 * state, and for the failing layer its name and fix, with the firewall fix offered behind consent.
 * A part of /dashboard/app.js (see page-script.ts); `el` comes from the common part.
 */
export const diagnosisScript = `
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
    offer.addEventListener("click", () => { consentOpen = key; refreshDiagnosis(); });
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
      setTimeout(refreshDiagnosis, 500);
    } catch (error) {
      result.textContent = "could not reach the sidecar: " + error;
    }
  });
  no.addEventListener("click", () => { consentOpen = null; refreshDiagnosis(); });
  box.append(yes, no, result);
  return box;
}

function renderReport(report) {
  const section = el("section", { class: "report " + (report.usable ? "usable" : "unusable"), "data-peer": report.peer || report.from, "data-usable": String(report.usable) });
  const name = report.peer === report.from ? report.from + " (this machine)" : report.from + " → " + report.peer;
  const h3 = el("h3");
  h3.append(el("span", { class: "name" }, name + ": "), el("span", { class: "verdict" }, verdict(report)));
  section.append(h3);
  const list = el("ol", { class: "layers" });
  for (const layer of report.layers) list.append(renderLayer(report, layer));
  section.append(list);
  return section;
}

async function refreshDiagnosis() {
  const summary = document.getElementById("diagnosis-summary");
  try {
    // load=0: looking at the page must not load (and keep loaded) a model that is only available.
    const overview = await getJson("/diagnostics?load=0");
    document.getElementById("reports").replaceChildren(...overview.reports.map(renderReport));
    const usable = overview.reports.filter((r) => r.usable).length;
    summary.textContent = usable + " of " + overview.reports.length + " paths can serve a prompt";
  } catch (error) {
    summary.textContent = "no diagnosis: " + error.message;
  }
}

/**
 * A hidden tab asks nothing: the diagnosis's first-token check runs a model on every path (at
 * most once per path in diagnostics' reuse window), which a page left open in the background
 * should not keep doing.
 */
async function diagnosisLoop() {
  if (consentOpen === null && !document.hidden) await refreshDiagnosis();
  setTimeout(diagnosisLoop, refreshMs);
}
`;
