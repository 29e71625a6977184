/**
 * The page's prompt box: sends the prompt to this sidecar's own OpenAI chat endpoint with
 * `stream: true`, so routing picks the machine as it does for any app, and shows the reply as it
 * streams, the load progress while the model loads, and Potluck's footer (who served it, how it
 * was reached, whether it was the test model). A part of /dashboard/app.js (see page-script.ts).
 */
export const chatScript = `
/** A reply's stream is bounded: one event is a token; a megabyte without an event end is not a reply. */
const sseEventCharsMax = 1 << 20;
const routeText = { local: "this machine", own: "own machine", peer: "trusted peer" };
let chatAbort = null;

/** Reads an OpenAI chat stream; calls onText per token, onLoading per load report; returns the footer event. */
async function readChatStream(body, onText, onLoading) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let final = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\\n")) {
        const loading = /^: potluck loading (.+) (\\d+)%$/.exec(line);
        if (loading) onLoading(loading[1], Number(loading[2]));
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        const data = JSON.parse(line.slice(6));
        if (data.error) throw new Error(data.error.message + (data.error.layer ? " (layer: " + data.error.layer + ")" : ""));
        const delta = data.choices && data.choices[0] && data.choices[0].delta;
        if (delta && typeof delta.content === "string") onText(delta.content);
        if (data.potluck) final = data;
      }
    }
    if (buffer.length > sseEventCharsMax) throw new Error("the reply stream sent an event over " + sseEventCharsMax + " characters");
  }
  return final;
}

function footerText(final, model, seconds) {
  const p = final.potluck;
  const test = p.test_model ? " (TEST MODEL: random weights)" : "";
  const tokens = final.usage ? final.usage.completion_tokens : "?";
  return "— served by " + p.served_by + " (" + (routeText[p.route] || p.route) + ") · " + model + test + " · " + tokens + " tokens · " + seconds + " s";
}

async function sendPrompt(event) {
  event.preventDefault();
  const model = document.getElementById("chat-model").value;
  const prompt = document.getElementById("chat-prompt").value;
  const maxTokens = Number(document.getElementById("chat-max-tokens").value) || 256;
  const reply = document.getElementById("chat-reply");
  const progress = document.getElementById("chat-progress");
  const footer = document.getElementById("chat-footer");
  const send = document.getElementById("chat-send");
  const stop = document.getElementById("chat-stop");
  reply.textContent = "";
  footer.textContent = "";
  for (const name of ["served-by", "route", "test-model"]) footer.removeAttribute("data-" + name);
  if (!model) { progress.textContent = "no model to ask: no machine offers a chat model"; return; }
  progress.textContent = "asking " + model + "…";
  chatAbort = new AbortController();
  send.disabled = true;
  stop.disabled = false;
  const started = performance.now();
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, messages: [{ role: "user", content: prompt }], max_tokens: maxTokens, stream: true }),
      signal: chatAbort.signal,
    });
    if (!res.ok || !res.body) {
      const body = await res.json().catch(() => null);
      throw new Error((body && body.error && body.error.message) || "HTTP " + res.status);
    }
    progress.textContent = "routed to " + (res.headers.get("x-potluck-served-by") || "a machine") + "…";
    const final = await readChatStream(res.body, (text) => reply.append(text), (m, pct) => { progress.textContent = "loading " + m + "… " + pct + "%"; });
    if (!final) throw new Error("the reply ended without its footer");
    footer.textContent = footerText(final, model, ((performance.now() - started) / 1000).toFixed(2));
    footer.setAttribute("data-served-by", final.potluck.served_by);
    footer.setAttribute("data-route", final.potluck.route);
    footer.setAttribute("data-test-model", String(final.potluck.test_model));
    progress.textContent = "";
  } catch (error) {
    progress.textContent = chatAbort.signal.aborted ? "stopped" : "no reply: " + error.message;
  } finally {
    send.disabled = false;
    stop.disabled = true;
    chatAbort = null;
  }
}

function setUpChat() {
  document.getElementById("chat").addEventListener("submit", sendPrompt);
  document.getElementById("chat-stop").addEventListener("click", () => { if (chatAbort) chatAbort.abort(); });
}
`;
