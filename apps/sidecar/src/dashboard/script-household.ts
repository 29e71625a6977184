/**
 * The page's household view: the machines (GET /dashboard/household) and every model where it
 * lives with its state (the household's GET /v1/models), and the model picker's choices. A part
 * of /dashboard/app.js (see page-script.ts); `el`, `bytes` and `getJson` come from the common part.
 */
export const householdScript = `
const relationText = { local: "this machine", own: "own machine", peer: "trusted peer" };

function hardwareText(h) {
  if (!h) return "—";
  const gpu = h.gpu ? "GPU " + h.gpu : "no GPU in use";
  return h.platform + " " + h.arch + " · " + h.cpus + (h.cpus === 1 ? " CPU" : " CPUs") + " · " + bytes(h.memoryBytes) + " RAM · " + gpu;
}

/** One row per place a model lives: /v1/models lists each id once with all its locations. */
function modelRows(list) {
  const rows = [];
  for (const m of list.data) {
    const p = m.potluck || {};
    for (const at of p.locations || []) rows.push({ id: m.id, kind: p.kind || "chat", source: p.source, sizeBytes: p.size_bytes, testModel: p.test_model, ...at });
  }
  return rows;
}

function stateText(row) {
  if (row.state === "loading") return "loading " + Math.round((row.progress || 0) * 100) + "%";
  if (row.state === "failed") return "failed: " + (row.reason || "no reason given");
  if (row.state === "ready") return "ready (loaded)";
  return "available (not loaded)";
}

function runtimeText(row) {
  const r = row.runtime;
  if (!r) return "—";
  const unload = r.expiresAt === null ? "kept loaded" : "unloads in " + Math.max(0, Math.round((Date.parse(r.expiresAt) - Date.now()) / 1000)) + " s";
  return r.backend + " · " + r.gpuLayers + " GPU layers · " + bytes(r.ramBytes) + " RAM" + (r.vramBytes > 0 ? " · " + bytes(r.vramBytes) + " VRAM" : "") + " · " + unload;
}

function renderMachines(view, rows) {
  const trs = view.machines.map((m) => {
    const tr = el("tr", { "data-machine": m.machine, "data-status": m.status, "data-relation": m.relation });
    const here = rows.filter((r) => r.machine === m.machine);
    const loaded = here.filter((r) => r.state === "ready").length;
    const state = m.status === "unreachable" && m.error ? "unreachable (" + m.error.layer + ": " + m.error.message + ")" : m.status;
    const relation = relationText[m.relation] + (m.relation === "peer" ? ", owner " + m.owner : "");
    tr.append(el("td", { class: "name" }, m.machine), el("td", { class: "relation" }, relation), el("td", { class: "state" }, state),
      el("td", { class: "hardware" }, hardwareText(m.hardware)), el("td", { class: "count" }, here.length + " (" + loaded + " loaded)"));
    return tr;
  });
  document.querySelector("#machines tbody").replaceChildren(...trs);
}

function renderModels(rows) {
  const trs = rows.map((r) => {
    const tr = el("tr", { "data-model": r.id, "data-machine": r.machine, "data-state": r.state });
    const name = r.id + (r.testModel ? " (TEST MODEL: random weights)" : "");
    tr.append(el("td", { class: "model" }, name), el("td", { class: "machine" }, r.machine + " (" + relationText[r.relation] + ")"),
      el("td", { class: "state" }, stateText(r)), el("td", { class: "runtime" }, runtimeText(r)), el("td", { class: "kind" }, r.kind),
      el("td", { class: "source" }, r.source || "—"), el("td", { class: "size" }, bytes(r.sizeBytes)));
    return tr;
  });
  document.querySelector("#models tbody").replaceChildren(...trs);
}

/**
 * The picker offers chat models that some machine can serve; routing picks the machine. The
 * options are rebuilt only when they change, so a refresh does not close the open list, and the
 * person's choice is remembered: a machine that misses one refresh (busy loading, say) drops its
 * models from that list, and the choice comes back with them.
 */
let pickerKey = "";
let pickerChoice = null;
function renderPicker(list) {
  const select = document.getElementById("chat-model");
  const choices = list.data.filter((m) => m.potluck && m.potluck.kind !== "embedding" && m.potluck.state !== "failed").map((m) => {
    const where = m.potluck.locations.filter((l) => l.state !== "failed").map((l) => l.machine + " " + l.state).join(", ");
    return { value: m.id, text: m.id + " — " + where };
  });
  const key = JSON.stringify(choices);
  if (key === pickerKey) return;
  pickerKey = key;
  const chosen = pickerChoice !== null ? pickerChoice : select.value;
  select.replaceChildren(...choices.map((c) => el("option", { value: c.value }, c.text)));
  if (choices.some((c) => c.value === chosen)) select.value = chosen;
}

function setUpPicker() {
  const select = document.getElementById("chat-model");
  select.addEventListener("change", () => { pickerChoice = select.value; });
}

async function refreshHousehold() {
  const [view, list] = await Promise.allSettled([getJson("/dashboard/household"), getJson("/v1/models")]);
  const rows = list.status === "fulfilled" ? modelRows(list.value) : [];
  document.getElementById("models-problem").textContent = list.status === "fulfilled" ? "" : "the model list did not answer: " + list.reason.message;
  document.getElementById("machines-problem").textContent = view.status === "fulfilled" ? "" : "the machine list did not answer: " + view.reason.message;
  if (list.status === "fulfilled") { renderModels(rows); renderPicker(list.value); }
  if (view.status === "fulfilled") {
    renderMachines(view.value, rows);
    const answering = view.value.machines.filter((m) => m.status !== "unreachable").length;
    const loaded = rows.filter((r) => r.state === "ready").length;
    document.getElementById("summary").textContent = "served by " + view.value.machine + " · " + answering + " of " + view.value.machines.length +
      " machines answer · " + (list.status === "fulfilled" ? list.value.data.length : "?") + " models, " + loaded + " loaded";
    document.getElementById("updated").textContent = "updated " + new Date(view.value.generatedAt).toLocaleTimeString();
  }
}

/** A hidden tab does not fan out to the peers; it catches up as soon as it is shown again. */
async function householdLoop() {
  if (!document.hidden) await refreshHousehold();
  setTimeout(householdLoop, refreshMs);
}
`;
