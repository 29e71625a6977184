// The probe-load child (see probe-load.ts): loads one model file the way the sidecar would, in a
// process of its own, so that an assertion in llama.cpp aborts this process and not the sidecar.
// Plain JavaScript so it starts without a TypeScript loader; node-llama-cpp resolves from here as
// it does for the sidecar. Arguments: the model's path and the context size in tokens.
const [modelPath, contextTokens] = process.argv.slice(2);
const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
const llama = await getLlama({ build: "never", gpu: false, maxThreads: 1, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
const context = await model.createContext({ contextSize: Number(contextTokens), sequences: 1, threads: 1 });
// One token through the graph: some contradictions between metadata and tensors assert only when computed.
const tokens = model.tokenize("probe").slice(0, 1);
if (tokens.length > 0) await context.getSequence().evaluateWithoutGeneratingNewTokens(tokens);
await context.dispose();
await model.dispose();
await llama.dispose();
process.stdout.write("probe-load ok\n");
