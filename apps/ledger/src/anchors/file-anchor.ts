import { appendFile, readFile } from "node:fs/promises";
import type { StoredCheckpoint } from "../ledger/log.js";
import { AnchorError, type Anchor } from "./anchor.js";

/**
 * Appends each signed checkpoint as one JSON line to a file (a transparency file a member can
 * mirror, or a path on storage someone else controls). The receipt is the signed note itself.
 */
export class FileAnchor implements Anchor {
  readonly kind = "file";
  constructor(private readonly path: string) {}

  async publish(cp: StoredCheckpoint): Promise<string> {
    await appendFile(this.path, `${JSON.stringify({ size: cp.size, root: cp.root, note: cp.note })}\n`, {
      flush: true,
    });
    return cp.note;
  }

  async verify(cp: StoredCheckpoint, receipt: string): Promise<void> {
    if (receipt !== cp.note) throw new AnchorError(`file anchor receipt is not checkpoint ${cp.size}'s note`);
    const text = await readFile(this.path, "utf8");
    const found = text
      .split("\n")
      .some((line) => line.length > 0 && (JSON.parse(line) as { note?: string }).note === cp.note);
    if (!found) throw new AnchorError(`checkpoint ${cp.size} is not in ${this.path}`);
  }
}
