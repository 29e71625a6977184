import { Hono } from "hono";
import { dashboardCss, dashboardHtml, dashboardJs } from "./page.js";

/**
 * The page is served with its script and style as files of its own, so a strict CSP can forbid
 * inline script, and framing is refused so the consent button cannot be clickjacked.
 */
const securityHeaders = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
};

export function dashboardRoutes() {
  return new Hono()
    .get("/dashboard", (c) =>
      c.body(dashboardHtml, 200, { ...securityHeaders, "content-type": "text/html; charset=utf-8" }),
    )
    .get("/dashboard/app.js", (c) =>
      c.body(dashboardJs, 200, { ...securityHeaders, "content-type": "text/javascript; charset=utf-8" }),
    )
    .get("/dashboard/style.css", (c) =>
      c.body(dashboardCss, 200, { ...securityHeaders, "content-type": "text/css; charset=utf-8" }),
    );
}
