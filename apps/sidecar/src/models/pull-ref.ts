import { basename } from "node:path";

/** What a pull reference names: the URL to fetch, the file name to save and the model id it becomes. */
export interface PullTarget {
  /** The reference as given (recorded in the manifest). */
  ref: string;
  /** What node-llama-cpp's downloader is asked for: the http(s) URL or the `hf:` URI itself. */
  uri: string;
  fileName: string;
  /** The name clients use: the file name without `.gguf` (and without a split model's part suffix). */
  id: string;
  /** A split model (`-00001-of-0000N.gguf`): the downloader fetches every part. */
  split: boolean;
}

/** Longest reference accepted; a URL to a model file is short. */
export const pullRefCharsMax = 2_048;

const splitPart = /-(\d{5})-of-(\d{5})\.gguf$/i;

/** A refusal naming the field (`ref`) and what it expects; the route turns it into a 400. */
export class PullRefError extends Error {
  override name = "PullRefError";
}

/**
 * Parses `https://host/path/model.gguf`, `http://…` or `hf:org/repo/path/file.gguf[#branch]`.
 * node-llama-cpp resolves an `hf:` URI to `<endpoint>/org/repo/resolve/<branch>/<path>` itself
 * (its `endpoints.huggingFace` option, else MODEL_ENDPOINT or HF_ENDPOINT); the `hf:org/repo:quant`
 * form asks the Hugging Face API which file that is, so it is refused here: name the file.
 */
export function parsePullRef(ref: string): PullTarget {
  const text = ref.trim();
  if (text.length === 0 || text.length > pullRefCharsMax)
    throw new PullRefError(`ref: expected a model URL or hf:org/repo/file.gguf of 1-${pullRefCharsMax} characters`);
  let path: string;
  if (/^https?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new PullRefError(`ref: ${JSON.stringify(text)} is not a valid URL`);
    }
    path = decodeURIComponent(url.pathname);
  } else if (text.startsWith("hf:")) {
    const [repoPath = ""] = text.slice("hf:".length).split("#");
    const parts = repoPath.split("/");
    if (parts.length < 3 || parts.some((p) => p.length === 0 || p === "." || p === ".."))
      throw new PullRefError(
        "ref: expected hf:ORG/REPO/FILE.gguf (a file in the repository, e.g. hf:org/model-GGUF/model-Q4_K_M.gguf), " +
          `got ${JSON.stringify(text)}`,
      );
    path = repoPath;
  } else {
    throw new PullRefError(`ref: expected an http(s) URL or hf:ORG/REPO/FILE.gguf, got ${JSON.stringify(text)}`);
  }
  const fileName = basename(path);
  if (!/^[^/\\\0]+\.gguf$/i.test(fileName) || fileName.startsWith("."))
    throw new PullRefError(`ref: expected a .gguf file at the end of the path, got ${JSON.stringify(fileName)}`);
  const split = splitPart.test(fileName);
  const id = fileName.replace(splitPart, "").replace(/\.gguf$/i, "");
  return { ref: text, uri: text, fileName, id, split };
}
