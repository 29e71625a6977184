/** 1536 -> "1.5 KiB": sizes as people read them. */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** 75 -> "1:15", 3700 -> "1:01:40". */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/** When a loaded model will be unloaded: "in 4:59", "kept loaded" (null), or "-" when not reported. */
export function untilUnload(expiresAt: string | null | undefined, now = Date.now()): string {
  if (expiresAt === undefined) return "-";
  if (expiresAt === null) return "kept loaded";
  return `in ${formatSeconds((Date.parse(expiresAt) - now) / 1000)}`;
}

/** Rows as aligned columns, the first row the header (as `potluck peers` prints). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")
    .concat("\n");
}
