import { readFile, writeFile } from "node:fs/promises";
import { generateSigner, NoteAlg, parseSignerKey, type NoteSigner } from "@potluck/ledger-proof";

/**
 * Loads the signer key from `path`, or creates it (mode 0600) on first start. Two processes
 * starting together cannot end up with different keys: creation is exclusive and the loser reads.
 */
export async function loadOrCreateSigner(
  path: string,
  name: string,
  alg: typeof NoteAlg.ed25519 | typeof NoteAlg.cosignatureV1 = NoteAlg.ed25519,
): Promise<NoteSigner> {
  try {
    await writeFile(path, `${generateSigner(name, alg).skey}\n`, { flag: "wx", mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST")
      throw new Error(`creating the signing key ${path}: ${(error as Error).message}`, { cause: error });
  }
  const signer = parseSignerKey(await readFile(path, "utf8"));
  if (signer.name !== name)
    throw new Error(`the key in ${path} is for ${signer.name}, not ${name}; set POTLUCK_LEDGER_ORIGIN or move the key`);
  return signer;
}
