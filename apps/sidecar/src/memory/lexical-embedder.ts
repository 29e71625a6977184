import type { Embedder } from "./embedder.js";
import { normalizeInPlace } from "./embedder.js";

/**
 * The weight-free default: feature hashing of words, word pairs and character trigrams into a
 * fixed number of signed buckets, L2-normalized. It needs no model file, so memory works on a
 * machine with no model at all; it matches on shared words and word fragments, not on meaning.
 */
export function createLexicalEmbedder({ dimensions = 384 }: { dimensions?: number } = {}): Embedder {
  return {
    id: `lexical-v1:${dimensions}`,
    dimensions,
    embed: (text) => Promise.resolve(lexicalVector(text, dimensions)),
    close: () => Promise.resolve(),
  };
}

/** Feature weights: whole words carry the meaning, fragments catch inflections and typos. */
const weights = { word: 1, pair: 0.6, trigram: 0.35 } as const;

/** Words so common they only add noise to a question-versus-statement match. */
const stopwords = new Set(
  (
    "a an and are as at be by did do does for from had has have how i in is it its me my of on or our so that the " +
    "their them there these this to was we were what when where which who why will with you your"
  ).split(" "),
);

/** Only the first this-many tokens count: memory texts are bounded, and so is the work per embed. */
const tokensMax = 4_096;

export function lexicalVector(text: string, dimensions: number): Float32Array {
  const vector = new Float32Array(dimensions);
  const tokens = tokenize(text);
  let previous: string | undefined;
  for (const token of tokens) {
    addFeature(vector, `w:${token}`, weights.word);
    if (previous !== undefined) addFeature(vector, `p:${previous} ${token}`, weights.pair);
    const padded = `^${token}$`;
    for (let i = 0; i + 3 <= padded.length; i++) addFeature(vector, `c:${padded.slice(i, i + 3)}`, weights.trigram);
    previous = token;
  }
  // An empty or all-stopword text still gets a valid unit vector, one that matches nothing in particular.
  if (!normalizeInPlace(vector)) {
    vector[0] = 1;
  }
  return vector;
}

function tokenize(text: string): string[] {
  const words =
    text
      .normalize("NFKC")
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? [];
  const kept: string[] = [];
  for (const word of words) {
    if (kept.length >= tokensMax) break;
    if (!stopwords.has(word)) kept.push(word);
  }
  return kept;
}

/** Signed feature hashing: the sign bit keeps collisions from only ever adding up. */
function addFeature(vector: Float32Array, feature: string, weight: number): void {
  const hash = fnv1a(feature);
  const bucket = (hash >>> 1) % vector.length;
  vector[bucket] = (vector[bucket] ?? 0) + (hash & 1 ? weight : -weight);
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
