// Loads each native package the project depends on and reports the ones that fail, with why.
// Kept separate from postinstall so `potluck up` and CI can run the same check.
export async function checkNativePackages() {
  const failures = [];
  try {
    const { getLlama } = await import("node-llama-cpp");
    // build: "never" so a missing prebuild is an error here, never a silent multi-minute
    // source build; gpu: false because no machine this runs on in CI has one.
    const llama = await getLlama({ build: "never", gpu: false, logLevel: "error" });
    await llama.dispose();
  } catch (error) {
    failures.push(`node-llama-cpp: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    const usearch = await import("usearch");
    if (typeof usearch.Index !== "function") failures.push("usearch: Index class missing");
  } catch (error) {
    failures.push(`usearch: ${error instanceof Error ? error.message : String(error)}`);
  }
  return failures;
}
