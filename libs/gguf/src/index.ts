/** The tiny TEST model (random weights): the GGUF writer and its file cache, for the sidecar and the CLI. */
export {
  seededRandom,
  tinyGguf,
  tinySplitGguf,
  TinyModelShape,
  TINY_MODEL_MARKER_KEY,
  TINY_MODEL_NAME,
  type MetadataOverrides,
  type TestModelShape,
  type TinyVariant,
} from "./tiny-gguf.js";
export { ensureTinyModel, tinyModelFileName, tinyModelDigest } from "./tiny-model-file.js";
