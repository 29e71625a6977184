// Runs after `npm ci` / `npm install` at the root. npm 11 may skip the install scripts of
// dependencies, so this is where the project makes sure its native packages really load.
// It never downloads anything: node-llama-cpp ships prebuilt binaries inside registry packages.
import { checkNativePackages } from "./native-check.mjs";

const failures = await checkNativePackages();
if (failures.length > 0) {
  for (const failure of failures) console.error(`postinstall: ${failure}`);
  console.error("postinstall: native packages did not load; see the lines above");
  process.exit(1);
}
