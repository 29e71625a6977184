// Raw node-llama-cpp, in its own process so its (idle, spinning) threads never share a process
// with the bench's HTTP client. Loads the model once, then for every line on stdin runs one greedy
// generation and prints its timing as one JSON line.
//
//   node --import tsx tools/bench/inference/raw-runner.ts MODEL.gguf MAX_TOKENS CONTEXT_SIZE PROMPT
import { createInterface } from "node:readline";
import { getLlama, LlamaChat, type ChatHistoryItem } from "node-llama-cpp";

const [modelPath = "", maxTokensText = "256", contextSizeText = "2048", prompt = "Hello"] = process.argv.slice(2);
const llama = await getLlama({ build: "never", gpu: false, maxThreads: 1 });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: Number(contextSizeText), sequences: 1, threads: 1 });
// Best practice for the baseline: one sequence and one chat (its template resolved once).
const chat = new LlamaChat({ contextSequence: context.getSequence(), autoDisposeSequence: true });
process.stdout.write("ready\n");
for await (const _ of createInterface({ input: process.stdin })) {
  const history: ChatHistoryItem[] = [
    { type: "user", text: prompt },
    { type: "model", response: [] },
  ];
  let ttftMs: number | undefined;
  let tokens = 0;
  const started = performance.now();
  await chat.generateResponse(history, {
    maxTokens: Number(maxTokensText),
    temperature: 0,
    onToken: (t) => (tokens += t.length),
    onTextChunk: (text) => {
      if (ttftMs === undefined && text.length > 0) ttftMs = performance.now() - started;
    },
  });
  const totalMs = performance.now() - started;
  process.stdout.write(
    `${JSON.stringify({ ttftMs: ttftMs ?? totalMs, totalMs, completionTokens: tokens, servedBy: "raw process" })}\n`,
  );
}
chat.dispose();
await model.dispose();
await llama.dispose();
