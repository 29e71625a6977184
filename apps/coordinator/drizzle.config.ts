import { defineConfig } from "drizzle-kit";

// `npx drizzle-kit generate` (run in apps/coordinator) writes a new migration into ./drizzle.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema.ts",
  out: "./drizzle",
});
