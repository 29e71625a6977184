/**
 * How long a model stays loaded after its last request, as Ollama users write it (`keep_alive`,
 * OLLAMA_KEEP_ALIVE): a duration ("5m", "30s", "1h30m", "250ms"), a bare number of seconds, a
 * negative value to keep it loaded, or 0 to unload right after each request. In milliseconds;
 * `keepForever` (-1) stands for every negative value.
 */
export const keepForever = -1;

/** Ollama's default: five minutes. */
export const defaultKeepAliveMs = 5 * 60_000;

/** Longer than this is "forever" in practice; capping it keeps setTimeout's 32-bit delay from overflowing. */
export const keepAliveMsMax = 24 * 24 * 3_600_000;

const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const durationPart = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;

/** The keep-alive in ms, or an Error naming what was expected. */
export function parseKeepAlive(text: string): number | Error {
  const value = text.trim();
  const expected = `expected a duration such as 5m, 30s or 1h30m, a number of seconds, -1 (keep loaded) or 0, got ${JSON.stringify(text)}`;
  if (value.length === 0 || value.length > 32) return new Error(expected);
  const negative = value.startsWith("-");
  const body = negative ? value.slice(1) : value;
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(body)) ms = Number(body) * 1_000;
  else {
    ms = 0;
    durationPart.lastIndex = 0;
    let consumed = 0;
    for (let match = durationPart.exec(body); match !== null; match = durationPart.exec(body)) {
      ms += Number(match[1]) * unitMs[match[2] as keyof typeof unitMs];
      consumed = durationPart.lastIndex;
    }
    if (consumed !== body.length || body.length === 0) return new Error(expected);
  }
  if (negative && ms > 0) return keepForever;
  return Math.min(Math.round(ms), keepAliveMsMax);
}

/** When a model idle from `now` is unloaded: null while kept loaded. */
export function expiryOf(keepAliveMs: number, now: number): number | null {
  return keepAliveMs < 0 ? null : now + keepAliveMs;
}
