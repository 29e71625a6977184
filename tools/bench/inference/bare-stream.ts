// The floor for the peer path: raw node-llama-cpp streamed over a plain node:http server, with no
// sidecar in between (no routing, no signatures, no relay), in the same SSE shape the sidecar
// sends so the same client times it. Tokens are joined per window exactly like the sidecar's
// (first token at once, then at most one write per window, the end never held), so the floor
// pays the same number of writes — and of WireGuard packets — as the path it bounds.
//
//   node --import tsx tools/bench/inference/bare-stream.ts MODEL.gguf PORT CONTEXT_SIZE WINDOW_MS PROMPT
import { createServer } from "node:http";
import { getLlama, LlamaChat, type ChatHistoryItem } from "node-llama-cpp";

const [modelPath = "", portText = "0", contextSizeText = "2048", windowText = "4", prompt = "Hello"] =
  process.argv.slice(2);
const windowMs = Number(windowText);
const llama = await getLlama({ build: "never", gpu: false, maxThreads: 1 });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: Number(contextSizeText), sequences: 1, threads: 1 });
const chat = new LlamaChat({ contextSequence: context.getSequence(), autoDisposeSequence: true });

const server = createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8").on("data", (d: string) => (body += d));
  req.on("end", () => {
    const maxTokens = (JSON.parse(body) as { max_tokens: number }).max_tokens;
    res.writeHead(200, { "content-type": "text/event-stream" });
    let pending = "";
    let lastWriteAt = -Infinity;
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      if (pending.length === 0) return;
      res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: pending } }] })}\n\n`);
      pending = "";
      lastWriteAt = performance.now();
    };
    let tokens = 0;
    const history: ChatHistoryItem[] = [
      { type: "user", text: prompt },
      { type: "model", response: [] },
    ];
    void chat
      .generateResponse(history, {
        maxTokens,
        temperature: 0,
        onToken: (t) => (tokens += t.length),
        onTextChunk: (text) => {
          pending += text;
          if (timer !== undefined) return;
          const wait = lastWriteAt + windowMs - performance.now();
          if (wait <= 0) flush();
          else timer = setTimeout(flush, wait);
        },
      })
      .then(() => {
        clearTimeout(timer);
        flush();
        res.end(
          `data: ${JSON.stringify({ choices: [{ delta: {}, finish_reason: "length" }], usage: { completion_tokens: tokens }, served_by: "bare stream" })}\n\ndata: [DONE]\n\n`,
        );
      });
  });
});
server.listen(Number(portText), () => process.stdout.write("listening\n"));
