/**
 * Checks a GGUF's metadata before llama.cpp sees it. Some missing keys (feed-forward length, head
 * count) make llama.cpp abort the whole process, which no try/catch can stop, so a bad file must be
 * turned away here with a reason instead.
 */
export function missingGgufKeys(metadata: Record<string, unknown>): string[] {
  const general = asRecord(metadata.general);
  const arch = typeof general?.architecture === "string" ? general.architecture : undefined;
  if (arch === undefined) return ["general.architecture"];
  const missing: string[] = [];
  const archMeta = asRecord(metadata[arch]);
  for (const key of [
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
  ]) {
    if (typeof dig(archMeta, key) !== "number") missing.push(`${arch}.${key}`);
  }
  const epsilon = dig(archMeta, "attention.layer_norm_rms_epsilon") ?? dig(archMeta, "attention.layer_norm_epsilon");
  if (typeof epsilon !== "number") missing.push(`${arch}.attention.layer_norm_rms_epsilon`);
  const tokenizer = asRecord(asRecord(metadata.tokenizer)?.ggml);
  if (typeof tokenizer?.model !== "string") missing.push("tokenizer.ggml.model");
  if (!Array.isArray(tokenizer?.tokens) || tokenizer.tokens.length === 0) missing.push("tokenizer.ggml.tokens");
  return missing;
}

/** A value at a dotted path in GGUF metadata (`llama.attention.head_count`), or undefined. */
export function dig(record: Record<string, unknown> | undefined, dotted: string): unknown {
  let value: unknown = record;
  for (const part of dotted.split(".")) value = asRecord(value)?.[part];
  return value;
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
}
