import { chatScript } from "./script-chat.js";
import { diagnosisScript } from "./script-diagnosis.js";
import { householdScript } from "./script-household.js";

/**
 * /dashboard/app.js: the page's parts joined into one classic script (no modules, no build step,
 * no external assets). Every part builds its DOM with `el`, which sets text as text.
 */
export const dashboardJs = `"use strict";
const refreshMs = 2000;
const el = (tag, attrs = {}, text) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};

function bytes(n) {
  if (typeof n !== "number") return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
}

/** GET a JSON answer of this sidecar; its error body's message when it refuses. */
async function getJson(path) {
  const res = await fetch(path, { cache: "no-store" });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error((body && body.error && body.error.message) || "HTTP " + res.status);
  return body;
}
${householdScript}
${chatScript}
${diagnosisScript}
setUpPicker();
setUpChat();
document.addEventListener("visibilitychange", () => { if (!document.hidden) { refreshHousehold(); if (consentOpen === null) refreshDiagnosis(); } });
householdLoop();
diagnosisLoop();
`;
