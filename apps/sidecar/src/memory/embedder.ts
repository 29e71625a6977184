/**
 * One interface for every way of turning text into a vector. The store keeps each record's
 * embedder id next to its vector and only ever compares vectors carrying the id of the embedder
 * in use: two models' vectors live in unrelated spaces, so their cosine means nothing.
 */
export interface Embedder {
  /** Stable identity of the vector space, e.g. "lexical-v1:384" or "gguf:bge-small.gguf:384:ab12…". */
  readonly id: string;
  readonly dimensions: number;
  /** Returns an L2-normalized vector of `dimensions` floats. */
  embed(text: string): Promise<Float32Array>;
  /** Frees native resources (models, contexts); idempotent. */
  close(): Promise<void>;
}

/** Scales `vector` in place to unit length; returns false for an all-zero or non-finite vector. */
export function normalizeInPlace(vector: Float32Array): boolean {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) sum += (vector[i] ?? 0) * (vector[i] ?? 0);
  if (!Number.isFinite(sum) || sum === 0) return false;
  const scale = 1 / Math.sqrt(sum);
  for (let i = 0; i < vector.length; i++) vector[i] = (vector[i] ?? 0) * scale;
  return true;
}
