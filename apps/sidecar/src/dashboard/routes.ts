import { Hono } from "hono";
import { householdRoutes, type HouseholdDeps } from "./household.js";
import { dashboardHtml } from "./page.js";
import { dashboardJs } from "./page-script.js";
import { dashboardCss } from "./page-style.js";

/**
 * The page is served with its script and style as files of its own, so a strict CSP can forbid
 * inline script; its fetches go to this sidecar only (connect-src 'self', and the loopback guard
 * in front of every route checks Host and Origin). Framing is refused so the consent button
 * cannot be clickjacked.
 */
const securityHeaders = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};

export type DashboardDeps = HouseholdDeps;

/** GET /dashboard (the household page), its script and style, and GET /dashboard/household. */
export function dashboardRoutes(deps: DashboardDeps) {
  return new Hono()
    .get("/dashboard", (c) =>
      c.body(dashboardHtml, 200, { ...securityHeaders, "content-type": "text/html; charset=utf-8" }),
    )
    .get("/dashboard/app.js", (c) =>
      c.body(dashboardJs, 200, { ...securityHeaders, "content-type": "text/javascript; charset=utf-8" }),
    )
    .get("/dashboard/style.css", (c) =>
      c.body(dashboardCss, 200, { ...securityHeaders, "content-type": "text/css; charset=utf-8" }),
    )
    .route("/", householdRoutes(deps));
}
