import { randomBytes } from "node:crypto";
import postgres from "postgres";

export const ADMIN_URL = process.env.POTLUCK_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** A fresh, randomly named database on the real server; `drop()` removes it (call in afterAll). */
export async function createTestDb(): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `ledger_t_${randomBytes(6).toString("hex")}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => undefined });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    name,
    drop: async () => {
      const a = postgres(ADMIN_URL, { max: 1, onnotice: () => undefined });
      try {
        await a.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** A raw superuser connection to a test database, for tampering with it the way an operator could. */
export function rawSql(url: string) {
  return postgres(url, { max: 1, onnotice: () => undefined });
}
