#!/usr/bin/env node
// Runs the TypeScript entry point directly through tsx, so a clone needs no build step.
import { register } from "tsx/esm/api";

register();
await import("../apps/mesh/src/main.ts");
