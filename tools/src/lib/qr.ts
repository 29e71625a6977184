import QRCode from "qrcode";

/**
 * Medium error correction: a wg-quick config (~350 bytes) stays a QR code a phone camera reads
 * off a laptop screen at once, and a few smudged modules are still corrected.
 */
export const qrOptions = { errorCorrectionLevel: "M" } as const;

/**
 * `text` as a QR code for a terminal: two modules per character cell, drawn black on an explicit
 * white background, so it scans the same on a dark or a light terminal theme.
 */
export function qrForTerminal(text: string): Promise<string> {
  return QRCode.toString(text, { ...qrOptions, type: "terminal", small: true });
}
