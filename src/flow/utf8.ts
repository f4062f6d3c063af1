/**
 * Decoding the bytes of flow, config and input files. A file that is not valid UTF-8 is an error
 * naming the file, line and column of the first bad byte, instead of being read with U+FFFD
 * replacement characters (which would silently change the strings of a flow or its input). A
 * UTF-8 byte-order mark at the start is skipped, as editors on Windows write one.
 * @module
 */
import { FlowLoadError, type SourcePosition } from "../errors.ts";

const strict = new TextDecoder("utf-8", { fatal: true });

/**
 * The text of `bytes`, which must be UTF-8 (a leading byte-order mark is dropped).
 * @param file names the file in the error (as the user gave it).
 * @param what what the bytes are, for the message. @default "file"
 * @throws {FlowLoadError} `<file>:<line>:<col>: the file is not valid UTF-8 (byte 0xE9 at byte
 *   offset 85): ...` at the first byte that is not part of a valid UTF-8 sequence.
 */
export function decodeUtf8(bytes: Uint8Array, file?: string, what = "file"): string {
  try {
    return strict.decode(bytes);
  } catch {
    const at = invalidUtf8Offset(bytes);
    if (at < 0) throw new FlowLoadError(`${file ?? `the ${what}`} is not valid UTF-8`);
    const before = strict.decode(bytes.subarray(0, at));
    const nl = before.lastIndexOf("\n");
    let line = 1;
    for (let i = 0; i < before.length; i++) if (before.charCodeAt(i) === 10) line++;
    const col = before.length - nl; // the decoder drops a BOM, which is no column
    const pos: SourcePosition = { line, col };
    if (file !== undefined) pos.file = file;
    const hex = bytes[at].toString(16).toUpperCase().padStart(2, "0");
    throw new FlowLoadError(
      `the ${what} is not valid UTF-8 (byte 0x${hex} at byte ` +
        `offset ${at}): save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)`,
      pos,
    );
  }
}

/**
 * The offset of the first byte of `b` that does not start or continue a valid UTF-8 sequence
 * (overlong forms, surrogates and code points above U+10FFFF are invalid, as in the WHATWG
 * decoder), or -1 when all of `b` is valid.
 */
export function invalidUtf8Offset(b: Uint8Array): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) need = 2;
    else if (c >= 0xf0 && c <= 0xf4) need = 3;
    else return i;
    if (i + need >= n) return i; // truncated at the end
    let lo = 0x80;
    let hi = 0xbf;
    if (c === 0xe0) lo = 0xa0;
    else if (c === 0xed) hi = 0x9f;
    else if (c === 0xf0) lo = 0x90;
    else if (c === 0xf4) hi = 0x8f;
    const c1 = b[i + 1];
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= need; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return -1;
}
