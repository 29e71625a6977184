/**
 * The household page: one page on loopback, served by every machine, that shows the whole
 * household — its machines with their state and hardware, every model with where it lives and
 * whether it is loaded, a prompt box that lets routing pick the machine, and the per-path diagnosis.
 * Its script and style are separate files (page-script.ts, page-style.ts) so a strict CSP can
 * forbid inline script. Text from the network (model ids, machine names, failure reasons) is only
 * ever set as text, never parsed as HTML.
 */
export const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Potluck household</title>
<link rel="stylesheet" href="/dashboard/style.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header>
  <h1>Potluck household</h1>
  <p id="summary" aria-live="polite">loading…</p>
</header>
<main>
<section id="machines-section" aria-labelledby="machines-title">
  <h2 id="machines-title">Machines</h2>
  <table id="machines">
    <thead><tr><th>machine</th><th>relation</th><th>state</th><th>hardware</th><th>models</th></tr></thead>
    <tbody></tbody>
  </table>
  <p class="problem" id="machines-problem" role="status"></p>
</section>
<section id="models-section" aria-labelledby="models-title">
  <h2 id="models-title">Models</h2>
  <table id="models">
    <thead><tr><th>model</th><th>machine</th><th>state</th><th>runs on</th><th>kind</th><th>source</th><th>size</th></tr></thead>
    <tbody></tbody>
  </table>
  <p class="problem" id="models-problem" role="status"></p>
</section>
<section id="chat-section" aria-labelledby="chat-title">
  <h2 id="chat-title">Ask a model</h2>
  <form id="chat">
    <label>model <select id="chat-model" name="model" required></select></label>
    <label>max tokens <input id="chat-max-tokens" name="max_tokens" type="number" min="1" max="4096" value="256"></label>
    <textarea id="chat-prompt" name="prompt" rows="3" maxlength="20000" required placeholder="Say hello"></textarea>
    <div><button type="submit" id="chat-send">Send</button><button type="button" id="chat-stop" disabled>Stop</button></div>
  </form>
  <p id="chat-progress" role="status"></p>
  <pre id="chat-reply" aria-live="polite"></pre>
  <p id="chat-footer"></p>
</section>
<section id="diagnosis-section" aria-labelledby="diagnosis-title">
  <h2 id="diagnosis-title">Can a prompt reach the model right now?</h2>
  <p id="diagnosis-summary" aria-live="polite">checking…</p>
  <div id="reports"></div>
</section>
</main>
<footer><span id="updated"></span></footer>
</body>
</html>
`;
