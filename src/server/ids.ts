/**
 * Ids of runs and batches: UUID version 7 (RFC 9562), time-ordered like stepflow 0.8's
 * (`Uuid::now_v7`), so sorting ids sorts by creation time.
 * @module
 */

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

let lastMs = 0;
/** Random bytes drawn 4 KiB at a time (one system call per 256 ids). */
const pool = new Uint8Array(4096);
let poolAt = pool.length;
let seq = 0;

/**
 * A new UUID v7: 48 bits of Unix time in ms, then a 12-bit counter within the millisecond (so ids
 * made in the same millisecond still sort in creation order), then random bits.
 */
export function uuidv7(): string {
  if (poolAt + 16 > pool.length) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  const b = pool.subarray(poolAt, poolAt += 16);
  let ms = Date.now();
  if (ms <= lastMs) {
    ms = lastMs;
    seq++;
    if (seq > 0xfff) {
      // 4,096 ids in one millisecond: borrow the next millisecond
      ms = ++lastMs;
      seq = 0;
    }
  } else {
    lastMs = ms;
    seq = 0;
  }
  b[0] = Math.floor(ms / 2 ** 40) & 0xff;
  b[1] = Math.floor(ms / 2 ** 32) & 0xff;
  b[2] = (ms >>> 24) & 0xff;
  b[3] = (ms >>> 16) & 0xff;
  b[4] = (ms >>> 8) & 0xff;
  b[5] = ms & 0xff;
  b[6] = 0x70 | (seq >>> 8);
  b[7] = seq & 0xff;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = (i: number) => HEX[b[i]];
  return `${h(0)}${h(1)}${h(2)}${h(3)}-${h(4)}${h(5)}-${h(6)}${h(7)}-${h(8)}${h(9)}-${h(10)}${
    h(11)
  }${h(12)}${h(13)}${h(14)}${h(15)}`;
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/**
 * A run or batch id as stored (hyphenated, lowercase), from the forms stepflow 0.8 accepts:
 * hyphenated or 32 hex digits (`stepflow run` prints `run_id: <32 hex>`). Undefined when `text`
 * is not a UUID.
 */
export function normalizeUuid(text: string): string | undefined {
  if (!UUID_RE.test(text)) return undefined;
  const h = text.replaceAll("-", "").toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
