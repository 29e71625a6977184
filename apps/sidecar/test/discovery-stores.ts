import { createHash } from "node:crypto";
import { mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { tinyGguf, tinySplitGguf, TinyModelShape } from "@potluck/gguf";

/** What a fake home holds; each entry is a model the tests expect discovery to list (or leave out). */
export interface FakeStores {
  home: string;
  ollamaRoot: string;
  paths: Record<string, string>;
}

/** Mean pooling (llama_pooling_type): what marks a GGUF as an embedding model. */
const poolingMean = 1;

/**
 * Builds, under `home`, the stores a household already has, from generated tiny GGUFs: Ollama
 * (manifests + blobs), LM Studio (new and old folders), a Hugging Face cache whose snapshot files
 * are symlinks into blobs/, with a split model, a projector, an embedding model, a truncated file,
 * a file llama.cpp would abort on, a split model missing a part and a name two stores share.
 */
export function buildFakeStores(home: string): FakeStores {
  const paths: Record<string, string> = {};
  const ollamaRoot = join(home, ".ollama", "models");
  const chatBlob = ollamaBlob(ollamaRoot, tinyGguf(11));
  ollamaManifest(ollamaRoot, "registry.ollama.ai/library/tinychat/latest", [
    {
      mediaType: "application/vnd.ollama.image.template",
      digest: ollamaBlob(ollamaRoot, Buffer.from("{{ .Prompt }}")).digest,
    },
    { mediaType: "application/vnd.ollama.image.model", digest: chatBlob.digest },
  ]);
  paths.ollamaChat = chatBlob.path;
  const embedBlob = ollamaBlob(
    ollamaRoot,
    tinyGguf(12, TinyModelShape, {}, { architecture: "bert", poolingType: poolingMean }),
  );
  ollamaManifest(ollamaRoot, "registry.ollama.ai/someone/embedder/v1", [
    { mediaType: "application/vnd.ollama.image.model", digest: embedBlob.digest },
  ]);
  paths.ollamaEmbed = embedBlob.path;
  ollamaManifest(ollamaRoot, "hf.co/org/gone/Q4_K_M", [
    { mediaType: "application/vnd.ollama.image.model", digest: `sha256:${"0".repeat(64)}` },
  ]);

  const lmstudio = join(home, ".lmstudio", "models", "pub", "repo");
  paths.lmChat = put(join(lmstudio, "chat-q8.gguf"), tinyGguf(13));
  paths.lmProjectorByName = put(
    join(lmstudio, "mmproj-repo-f16.gguf"),
    tinyGguf(14, TinyModelShape, {}, { generalType: "mmproj" }),
  );
  paths.lmProjectorByMeta = put(
    join(lmstudio, "vision-adapter.gguf"),
    tinyGguf(14, TinyModelShape, {}, { generalType: "mmproj" }),
  );
  paths.lmOld = put(join(home, ".cache", "lm-studio", "models", "old", "repo", "old-chat.gguf"), tinyGguf(15));
  // An embedder of a generative architecture, marked only by its pooling type (like Qwen3-Embedding).
  paths.lmEmbed = put(
    join(lmstudio, "embed-llama.gguf"),
    tinyGguf(16, TinyModelShape, {}, { poolingType: poolingMean }),
  );

  const hub = join(home, ".cache", "huggingface", "hub");
  tinySplitGguf(17, 3).forEach((bytes, i) => {
    paths[`split${i + 1}`] = hfFile(hub, "org", "split", "new-rev", `split-model-0000${i + 1}-of-00003.gguf`, bytes);
  });
  paths.hfOld = hfFile(hub, "org", "split", "old-rev", "only-in-old-snapshot.gguf", tinyGguf(18));
  const old = join(hub, "models--org--split", "snapshots", "old-rev");
  utimesSync(old, new Date(Date.now() - 86_400_000), new Date(Date.now() - 86_400_000));
  const whole = tinyGguf(19);
  paths.truncated = hfFile(
    hub,
    "org",
    "broken",
    "r1",
    "truncated.gguf",
    whole.subarray(0, Math.floor(whole.length * 0.8)),
  );
  paths.abort = hfFile(
    hub,
    "org",
    "broken",
    "r1",
    "no-heads.gguf",
    tinyGguf(20, TinyModelShape, {}, { omitKeys: ["llama.attention.head_count"] }),
  );
  paths.partial1 = hfFile(hub, "org", "partial", "r1", "partial-00001-of-00003.gguf", tinySplitGguf(21, 3)[0]!);
  paths.partial3 = hfFile(hub, "org", "partial", "r1", "partial-00003-of-00003.gguf", tinySplitGguf(21, 3)[2]!);
  paths.hfDuplicate = hfFile(hub, "org", "dup", "r1", "chat-q8.gguf", tinyGguf(22));
  return { home, ollamaRoot, paths };
}

function put(path: string, bytes: Buffer): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}

function ollamaBlob(root: string, bytes: Buffer): { digest: string; path: string } {
  const hex = createHash("sha256").update(bytes).digest("hex");
  return { digest: `sha256:${hex}`, path: put(join(root, "blobs", `sha256-${hex}`), bytes) };
}

function ollamaManifest(root: string, name: string, layers: { mediaType: string; digest: string }[]): void {
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.docker.distribution.manifest.v2+json",
    config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: layers[0]!.digest, size: 1 },
    layers: layers.map((l) => ({ ...l, size: 1 })),
  };
  put(join(root, "manifests", name), Buffer.from(JSON.stringify(manifest)));
}

/** As huggingface_hub stores a file: the bytes in blobs/<sha256>, a relative symlink in the snapshot. */
function hfFile(hub: string, org: string, repo: string, rev: string, name: string, bytes: Buffer): string {
  const repoDir = join(hub, `models--${org}--${repo}`);
  const blob = put(join(repoDir, "blobs", createHash("sha256").update(bytes).digest("hex")), bytes);
  const link = join(repoDir, "snapshots", rev, name);
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(relative(dirname(link), blob), link);
  return link;
}
