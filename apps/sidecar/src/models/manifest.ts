import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

/** One model Potluck downloaded: `rm` removes only models listed here, and only their files. */
export const PulledModel = z.object({
  id: z.string().min(1).max(256),
  ref: z.string().min(1),
  /** File names inside the pulled folder (one, or every part of a split model); never a path. */
  files: z.array(z.string().regex(/^[^/\\]+$/)).min(1),
  sizeBytes: z.number().int().nonnegative(),
  /** The checksum the file was verified against, when one was known. */
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
  pulledAt: z.string(),
});
export type PulledModel = z.infer<typeof PulledModel>;

const ManifestFile = z.object({ version: z.literal(1), models: z.array(PulledModel) });

/** Models Potluck keeps track of; a household pulling more than this is refusing to clean up. */
export const pulledModelsMax = 256;
export const manifestFileName = "manifest.json";

/** DATA_DIR/models/pulled: Potluck's own models folder. */
export function pulledDir(dataDir: string): string {
  return join(dataDir, "models", "pulled");
}

/**
 * The manifest of pulled models, read fresh on every call (it is small, and `rm` in another
 * process must be seen) and written whole through a rename, so a crash never leaves half a file.
 */
export class PulledManifest {
  constructor(readonly dir: string) {}

  list(): PulledModel[] {
    let text: string;
    try {
      text = readFileSync(join(this.dir, manifestFileName), "utf8");
    } catch {
      return [];
    }
    const parsed = ManifestFile.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${join(this.dir, manifestFileName)} is not a Potluck pull manifest`);
    return parsed.data.models;
  }

  get(id: string): PulledModel | undefined {
    return this.list().find((m) => m.id === id);
  }

  add(model: PulledModel): void {
    const models = this.list().filter((m) => m.id !== model.id);
    if (models.length >= pulledModelsMax)
      throw new Error(`${pulledModelsMax} pulled models already; remove some with potluck models rm first`);
    this.write([...models, model]);
  }

  remove(id: string): void {
    this.write(this.list().filter((m) => m.id !== id));
  }

  private write(models: PulledModel[]): void {
    mkdirSync(this.dir, { recursive: true });
    const path = join(this.dir, manifestFileName);
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify({ version: 1, models }, null, 2)}\n`);
    renameSync(temp, path);
  }
}

/**
 * The pulled models as the engine's sources, to load at start with the rest (a file that went
 * missing is left out). Shaped as inference/engine.ts `ModelSource`.
 */
export function pulledModelSources(dir: string) {
  return new PulledManifest(dir)
    .list()
    .filter((m) => existsSync(join(dir, m.files[0]!)))
    .map((m) => ({
      id: m.id,
      path: join(dir, m.files[0]!),
      testModel: false,
      source: "potluck" as const,
      sizeBytes: m.sizeBytes,
      parts: m.files.map((f) => join(dir, f)),
    }));
}
