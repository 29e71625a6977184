/** The household page's style sheet (served as /dashboard/style.css; no external assets). */
export const dashboardCss = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem; color: #1b1b1b; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
th { font-size: .8rem; text-transform: uppercase; color: #555; }
td.name, td.model { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
tr[data-status="unreachable"] td.state, tr[data-state="failed"] td.state { color: #c62828; font-weight: 600; }
tr[data-status="ready"] td.state, tr[data-state="ready"] td.state { color: #2e7d32; }
tr[data-status="warming"] td.state, tr[data-state="loading"] td.state { color: #b26a00; }
tr[data-state="available"] td.state { color: #555; }
.problem:empty { display: none; }
.problem { color: #c62828; }
form#chat { display: grid; gap: .5rem; }
form#chat label { display: inline-block; margin-right: 1rem; }
textarea { font: inherit; width: 100%; box-sizing: border-box; }
select { font: inherit; max-width: 40rem; }
#chat-reply { white-space: pre-wrap; word-break: break-word; background: #f6f6f6; padding: .75rem; min-height: 2rem; border-radius: 6px; }
#chat-reply:empty { display: none; }
#chat-footer { color: #555; font-size: .9rem; }
#chat-footer[data-test-model="true"] { color: #b26a00; }
.report { border: 1px solid #ccc; border-radius: 8px; margin: 1rem 0; padding: .75rem 1rem; }
.report.usable { border-color: #2e7d32; }
.report.unusable { border-color: #c62828; }
.report h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
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
