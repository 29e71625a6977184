/**
 * Writes a tiny llama-architecture GGUF with random weights: a TEST MODEL that node-llama-cpp really
 * loads, generates from and embeds with, for tests and for a machine with no model configured. Its
 * output is gibberish by design; everything that shows it labels it as a test model.
 *
 * The file format (GGUF v3, little-endian): header, metadata key/values, tensor infos, padding to
 * the alignment, then each tensor's data at an aligned offset. All tensors are F32, which keeps the
 * writer free of quantisation code at the cost of a few hundred kB.
 *
 * It is a lib because two sides need it: the sidecar makes one at start-up when no model is
 * configured, and `potluck model tiny` (tools/src/model) writes one; apps never import tools.
 */

/** Shape of the generated model. Small on purpose: a CPU thread generates ~1,000+ tokens/s. */
export const TinyModelShape = {
  embeddingLength: 64,
  blockCount: 2,
  feedForwardLength: 128,
  headCount: 4,
  headCountKv: 4,
  // Long enough that a lab test can kill the serving host mid-stream before a reply could finish.
  contextLength: 8192,
  rmsEpsilon: 1e-5,
} as const;

/** The name every surface shows, so nobody mistakes it for a real model. */
export const TINY_MODEL_NAME = "potluck-tiny-test-model";
/** Metadata key marking a file as Potluck's generated test model. */
export const TINY_MODEL_MARKER_KEY = "potluck.test_model";

const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** llama.cpp token types (llama_token_type). */
const TokenType = { normal: 1, unknown: 2, control: 3, byte: 6 } as const;

/** The dimensions a generated model may vary (benches use a larger shape to model real compute). */
export type TestModelShape = { [K in keyof typeof TinyModelShape]: number };

/**
 * Numeric metadata written in place of what the shape implies, keeping the tensors as they are:
 * a file whose metadata contradicts its weights (`{"llama.attention.head_count": 0}`), for tests
 * that a broken model file cannot take the sidecar down. Only keys the writer already emits.
 */
export type MetadataOverrides = Readonly<Record<string, number>>;

/**
 * Variations of the generated file for tests of what reads model files (discovery): another
 * architecture name (`bert`: an embedding architecture; its `llama.*` keys are renamed to match),
 * a pooling type (what marks an embedding model), `general.type` (`mmproj`: a projector), and
 * keys left out (a file whose missing metadata would make llama.cpp abort).
 */
export interface TinyVariant {
  architecture?: string;
  poolingType?: number;
  generalType?: string;
  omitKeys?: readonly string[];
}

/** Returns the bytes of a complete GGUF file, identical for identical seeds (and shape). */
export function tinyGguf(
  seed = 1,
  shape: TestModelShape = TinyModelShape,
  overrides: MetadataOverrides = {},
  variant: TinyVariant = {},
): Buffer {
  const { metadata, tensors } = tinyModelParts(seed, shape, overrides, variant);
  return writeGguf(metadata, tensors);
}

/**
 * A split model as llama.cpp's gguf-split writes one: `count` files (name them
 * `<name>-00001-of-0000N.gguf`, …), the tensors shared out in order, the first part with all the
 * metadata, every part with `split.no`, `split.count` and `split.tensors.count`.
 */
export function tinySplitGguf(seed: number, count: number, shape: TestModelShape = TinyModelShape): Buffer[] {
  if (!Number.isInteger(count) || count < 2 || count > 9) throw new Error("tinySplitGguf: expected 2-9 parts");
  const { metadata, tensors } = tinyModelParts(seed, shape, {}, {});
  const perPart = Math.ceil(tensors.length / count);
  return Array.from({ length: count }, (_, no) => {
    const split: MetaEntry[] = [
      ["split.no", "u16", no],
      ["split.count", "u16", count],
      ["split.tensors.count", "i32", tensors.length],
    ];
    const own = tensors.slice(no * perPart, (no + 1) * perPart);
    return writeGguf(no === 0 ? [...metadata, ...split] : split, own);
  });
}

function tinyModelParts(
  seed: number,
  shape: TestModelShape,
  overrides: MetadataOverrides,
  variant: TinyVariant,
): { metadata: MetaEntry[]; tensors: Tensor[] } {
  const vocab = buildVocab();
  const rand = seededRandom(seed);
  const s = shape;
  const headDim = s.embeddingLength / s.headCount;
  const kvDim = headDim * s.headCountKv;
  const tensors: Tensor[] = [];
  const add = (name: string, dims: number[], data: Float32Array) => tensors.push({ name, dims, data });
  const e = s.embeddingLength;
  add("token_embd.weight", [e, vocab.tokens.length], randomMatrix(rand, e * vocab.tokens.length, 1));
  for (let b = 0; b < s.blockCount; b++) {
    add(`blk.${b}.attn_norm.weight`, [e], ones(e));
    add(`blk.${b}.attn_q.weight`, [e, e], randomMatrix(rand, e * e, 1 / Math.sqrt(e)));
    add(`blk.${b}.attn_k.weight`, [e, kvDim], randomMatrix(rand, e * kvDim, 1 / Math.sqrt(e)));
    add(`blk.${b}.attn_v.weight`, [e, kvDim], randomMatrix(rand, e * kvDim, 1 / Math.sqrt(e)));
    add(`blk.${b}.attn_output.weight`, [e, e], randomMatrix(rand, e * e, 1 / Math.sqrt(e)));
    add(`blk.${b}.ffn_norm.weight`, [e], ones(e));
    add(
      `blk.${b}.ffn_gate.weight`,
      [e, s.feedForwardLength],
      randomMatrix(rand, e * s.feedForwardLength, 1 / Math.sqrt(e)),
    );
    add(
      `blk.${b}.ffn_up.weight`,
      [e, s.feedForwardLength],
      randomMatrix(rand, e * s.feedForwardLength, 1 / Math.sqrt(e)),
    );
    add(
      `blk.${b}.ffn_down.weight`,
      [s.feedForwardLength, e],
      randomMatrix(rand, e * s.feedForwardLength, 1 / Math.sqrt(s.feedForwardLength)),
    );
  }
  add("output_norm.weight", [e], ones(e));
  add("output.weight", [e, vocab.tokens.length], outputMatrix(rand, e, vocab.types));
  return { metadata: withVariant(withOverrides(metadataFor(vocab, seed, shape), overrides), variant), tensors };
}

function withVariant(metadata: MetaEntry[], variant: TinyVariant): MetaEntry[] {
  const arch = variant.architecture ?? "llama";
  let out = metadata.map((entry): MetaEntry => {
    if (entry[0] === "general.architecture") return ["general.architecture", "string", arch];
    return entry[0].startsWith("llama.") ? ([`${arch}.${entry[0].slice(6)}`, ...entry.slice(1)] as MetaEntry) : entry;
  });
  if (variant.poolingType !== undefined) out.push([`${arch}.pooling_type`, "u32", variant.poolingType]);
  if (variant.generalType !== undefined) out.push(["general.type", "string", variant.generalType]);
  const omit = new Set(variant.omitKeys ?? []);
  for (const key of omit)
    if (!out.some(([k]) => k === key)) throw new Error(`tinyGguf: no metadata key ${key} to omit`);
  out = out.filter(([key]) => !omit.has(key));
  return out;
}

interface Vocab {
  tokens: string[];
  types: number[];
  scores: number[];
  ids: { unk: number; bos: number; eos: number; imEnd: number };
}

/**
 * A SentencePiece-style vocabulary: control tokens, the 256 byte-fallback tokens, then printable
 * characters and "▁x" (space + character) pieces, so any text tokenizes and generated text reads
 * as words of letters rather than raw bytes.
 */
function buildVocab(): Vocab {
  const tokens: string[] = [];
  const types: number[] = [];
  const push = (token: string, type: number) => {
    tokens.push(token);
    types.push(type);
  };
  push("<unk>", TokenType.unknown);
  push("<s>", TokenType.control);
  push("</s>", TokenType.control);
  push("<|im_start|>", TokenType.control);
  push("<|im_end|>", TokenType.control);
  for (let byte = 0; byte < 256; byte++)
    push(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`, TokenType.byte);
  push("▁", TokenType.normal);
  const printable: string[] = [];
  for (let code = 33; code < 127; code++) printable.push(String.fromCharCode(code));
  for (const ch of printable) push(ch, TokenType.normal);
  for (const ch of printable) if (/[A-Za-z0-9]/.test(ch)) push(`▁${ch}`, TokenType.normal);
  push("\n", TokenType.normal);
  // Longer pieces score higher so the tokenizer prefers "▁a" over "▁" + "a".
  const scores = tokens.map((token, i) => (types[i] === TokenType.normal ? -1 / [...token].length : 0));
  return { tokens, types, scores, ids: { unk: 0, bos: 1, eos: 2, imEnd: 4 } };
}

function metadataFor(vocab: Vocab, seed: number, s: TestModelShape): MetaEntry[] {
  return [
    ["general.architecture", "string", "llama"],
    ["general.name", "string", `${TINY_MODEL_NAME} (random weights, seed ${seed}; NOT a real model)`],
    ["general.description", "string", "Potluck test model: random weights for tests. Its output is gibberish."],
    ["general.alignment", "u32", ALIGNMENT],
    [TINY_MODEL_MARKER_KEY, "bool", true],
    ["potluck.seed", "u32", seed >>> 0],
    ["llama.context_length", "u32", s.contextLength],
    ["llama.embedding_length", "u32", s.embeddingLength],
    ["llama.block_count", "u32", s.blockCount],
    ["llama.feed_forward_length", "u32", s.feedForwardLength],
    ["llama.attention.head_count", "u32", s.headCount],
    ["llama.attention.head_count_kv", "u32", s.headCountKv],
    ["llama.attention.layer_norm_rms_epsilon", "f32", s.rmsEpsilon],
    ["llama.rope.dimension_count", "u32", s.embeddingLength / s.headCount],
    ["llama.vocab_size", "u32", vocab.tokens.length],
    ["tokenizer.ggml.model", "string", "llama"],
    ["tokenizer.ggml.tokens", "string[]", vocab.tokens],
    ["tokenizer.ggml.scores", "f32[]", vocab.scores],
    ["tokenizer.ggml.token_type", "i32[]", vocab.types],
    ["tokenizer.ggml.unknown_token_id", "u32", vocab.ids.unk],
    ["tokenizer.ggml.bos_token_id", "u32", vocab.ids.bos],
    ["tokenizer.ggml.eos_token_id", "u32", vocab.ids.eos],
    ["tokenizer.ggml.eot_token_id", "u32", vocab.ids.imEnd],
    ["tokenizer.ggml.add_bos_token", "bool", false],
    ["tokenizer.ggml.add_eos_token", "bool", false],
    ["tokenizer.chat_template", "string", CHATML_TEMPLATE],
  ];
}

/**
 * The output projection: random rows for normal tokens, zero rows for control and byte tokens.
 * A fully random head makes end-of-sequence win at once about as often as not; zero logits keep
 * control tokens below the best normal token, so greedy generation runs to max tokens.
 */
function outputMatrix(rand: () => number, embedding: number, types: readonly number[]): Float32Array {
  const out = new Float32Array(embedding * types.length);
  for (let token = 0; token < types.length; token++) {
    if (types[token] !== TokenType.normal) continue;
    for (let i = 0; i < embedding; i++) out[token * embedding + i] = (rand() * 2 - 1) * 0.5;
  }
  return out;
}

// ---- the GGUF writer -------------------------------------------------------------------------

const ALIGNMENT = 32;
const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
const GGUF_VERSION = 3;
const ValueType = { u16: 2, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;
const GGML_TYPE_F32 = 0;

function withOverrides(metadata: MetaEntry[], overrides: MetadataOverrides): MetaEntry[] {
  const keys = new Set(metadata.map(([key]) => key));
  for (const key of Object.keys(overrides))
    if (!keys.has(key)) throw new Error(`tinyGguf: no metadata key ${key} to override`);
  return metadata.map((entry): MetaEntry => {
    const value = overrides[entry[0]];
    if (value === undefined) return entry;
    if (entry[1] !== "u32" && entry[1] !== "f32") throw new Error(`tinyGguf: ${entry[0]} is not numeric`);
    return [entry[0], entry[1], value];
  });
}

type MetaEntry =
  | [string, "string", string]
  | [string, "u16" | "u32" | "i32" | "f32", number]
  | [string, "bool", boolean]
  | [string, "string[]", string[]]
  | [string, "f32[]" | "i32[]", number[]];
interface Tensor {
  name: string;
  dims: number[];
  data: Float32Array;
}

function writeGguf(metadata: MetaEntry[], tensors: Tensor[]): Buffer {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC).u32(GGUF_VERSION).u64(tensors.length).u64(metadata.length);
  for (const entry of metadata) writeMeta(w, entry);
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    w.str(t.name).u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_F32).u64(offset);
    offsets.push(offset);
    offset = alignUp(offset + t.data.byteLength);
  }
  w.pad(ALIGNMENT);
  const dataStart = w.length;
  tensors.forEach((t, i) => {
    w.pad(ALIGNMENT);
    // Assert the layout we promised in the tensor infos before writing the bytes.
    if (w.length - dataStart !== offsets[i])
      throw new Error(`gguf writer: tensor ${t.name} at ${w.length - dataStart}, expected ${offsets[i]}`);
    w.bytes(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  });
  return w.toBuffer();
}

function writeMeta(w: ByteWriter, [key, kind, value]: MetaEntry): void {
  w.str(key);
  switch (kind) {
    case "string":
      w.u32(ValueType.string).str(value as string);
      break;
    case "u16":
      w.u32(ValueType.u16).u16(value as number);
      break;
    case "u32":
      w.u32(ValueType.u32).u32(value as number);
      break;
    case "i32":
      w.u32(ValueType.i32).i32(value as number);
      break;
    case "f32":
      w.u32(ValueType.f32).f32(value as number);
      break;
    case "bool":
      w.u32(ValueType.bool).u8(value === true ? 1 : 0);
      break;
    case "string[]": {
      const items = value as string[];
      w.u32(ValueType.array).u32(ValueType.string).u64(items.length);
      for (const item of items) w.str(item);
      break;
    }
    case "f32[]":
    case "i32[]": {
      const items = value as number[];
      w.u32(ValueType.array)
        .u32(kind === "f32[]" ? ValueType.f32 : ValueType.i32)
        .u64(items.length);
      for (const item of items) kind === "f32[]" ? w.f32(item) : w.i32(item);
      break;
    }
  }
}

function alignUp(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT;
}

/** An append-only little-endian byte buffer. */
class ByteWriter {
  private chunks: Buffer[] = [];
  length = 0;
  private push(buf: Buffer): this {
    this.chunks.push(buf);
    this.length += buf.length;
    return this;
  }
  u8(n: number) {
    const b = Buffer.alloc(1);
    b.writeUInt8(n);
    return this.push(b);
  }
  u16(n: number) {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(n);
    return this.push(b);
  }
  u32(n: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return this.push(b);
  }
  i32(n: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    return this.push(b);
  }
  f32(n: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(n);
    return this.push(b);
  }
  u64(n: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return this.push(b);
  }
  str(s: string) {
    const bytes = Buffer.from(s, "utf8");
    return this.u64(bytes.length).push(bytes);
  }
  bytes(buf: Buffer) {
    return this.push(buf);
  }
  pad(alignment: number) {
    const extra = (alignment - (this.length % alignment)) % alignment;
    return extra > 0 ? this.push(Buffer.alloc(extra)) : this;
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

// ---- deterministic random weights ------------------------------------------------------------

/** mulberry32: tiny, fast, and identical on every platform for a given seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomMatrix(rand: () => number, count: number, scale: number): Float32Array {
  const out = new Float32Array(count);
  // Uniform on [-a, a] with a = scale * sqrt(3) has standard deviation `scale`.
  const a = scale * Math.sqrt(3);
  for (let i = 0; i < count; i++) out[i] = (rand() * 2 - 1) * a;
  return out;
}

function ones(count: number): Float32Array {
  return new Float32Array(count).fill(1);
}
