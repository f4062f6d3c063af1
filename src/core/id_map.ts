/**
 * A map of values by string id (a run id, a request id) that does not hash new strings, and
 * does not use a `Map` for ids of a UUID's shape (issue 17).
 *
 * V8 computes a string's hash the first time the string is a Map key, and here that costs about
 * 0.5 µs (measured: the first `Map.get` of a fresh 36- or 8-character string 0.5-1.4 µs, of a
 * number 10 ns, of the same string again 15 ns). Run ids and request ids are new strings at every
 * run and call — a request's answer brings its id back as yet another string — so each map item
 * paid it three times. An id of a UUID's shape is placed by the number its last 7 hex digits make,
 * read without hashing (a random UUID's last digits are random; the engine's request ids count
 * there: src/protocol/pending_calls.ts).
 *
 * Those ids live in an open-addressing table of parallel arrays (linear probing, deletion by
 * backward shift, no tombstones), not in a `Map` keyed by that number as before: a map item puts
 * a run id and a request id in four such tables and takes them out again, and the `Map`'s
 * get-then-set and get-then-delete, with its table re-made every few dozen deletions, were about
 * 9% of the engine's busy time in a map over a step service (wave 11 profile). Ids of other
 * shapes are kept in a `Map` by their text. Ids whose tails collide (a `set` probing more than
 * {@linkcode MAX_PROBES} slots: version 1 UUIDs of one host) turn the table to placing ids by a
 * hash of all their characters ({@linkcode slotKey}). {@linkcode IdMap.values} lists in insertion order, as
 * a Map does (a copy, sorted when asked: the tables are read that way only by listings).
 * @module
 */

/** Hex digit values by character code (-1: not a hex digit). */
const HEX = new Int8Array(128).fill(-1);
for (let c = 48; c <= 57; c++) HEX[c] = c - 48;
for (let c = 97; c <= 102; c++) HEX[c] = c - 87;
for (let c = 65; c <= 70; c++) HEX[c] = c - 55;

/**
 * The number in the last 7 hex digits of a 36-character id (a UUID's shape), or -1: below 2^28,
 * a small integer V8 keeps unboxed (a larger one would be a heap number per lookup).
 */
export function hexTail(id: string): number {
  if (id.length !== 36) return -1;
  let n = 0;
  for (let i = 29; i < 36; i++) {
    const c = id.charCodeAt(i);
    const d = c < 128 ? HEX[c] : -1;
    if (d < 0) return -1;
    n = (n << 4) | d;
  }
  return n;
}

/** This process's seed for {@linkcode slotKey} (ids made to collide cannot be chosen in advance). */
const SEED = (Math.random() * 0x7fffffff) | 0;

/**
 * Where a table that saw its ids collide places an id of a UUID's shape (see
 * {@linkcode IdMap}): its {@linkcode hexTail} mixed with its other 29 characters and a
 * per-process seed (28 bits, a small integer), or -1 when it has no hex tail.
 */
export function slotKey(id: string): number {
  const k = hexTail(id);
  if (k < 0) return -1;
  let h = k ^ SEED;
  for (let i = 0; i < 29; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return (h ^ (h >>> 12)) & 0xfffffff;
}

/**
 * Slots a `set` may probe, or a `delete` shift through, before the table places its ids by
 * {@linkcode slotKey}: ids sharing their last digits all probed from one slot, each look-up
 * walking all of them -- version 1 UUIDs (Python's `uuid.uuid1()`) end with the host's MAC
 * address, and 40,000 runs given such ids took 8.6 s to record and read back in the memory store
 * (a Map: 56 ms). Random tails at half load make runs of 32 now and then (20,000 random ids
 * turned a table 32 made the limit about once in 40 tries); 128 they do not, and ids that do
 * collide reach it after a few hundred operations.
 */
const MAX_PROBES = 128;

/** Slots of a new table (a power of two). */
const MIN_SLOTS = 16;
/**
 * A table shrinks only from more slots than this: a table of open calls empties and fills again
 * with every batch of answers (16 calls at a time in a map), and re-making its arrays each time
 * was 0.16 page faults more per map item (wave 11).
 */
const SHRINK_ABOVE = 1024;

/** `n` slots holding `fill`. */
function slots<T>(n: number, fill: T): T[] {
  return new Array<T>(n).fill(fill);
}

/** Values by string id (see the module doc). */
export class IdMap<V> {
  /** The id in each slot (undefined: an empty slot). */
  #ids: (string | undefined)[] = slots(MIN_SLOTS, undefined);
  /**
   * The hex tail of the id in each slot. (Plain arrays, not typed arrays: these live on the V8
   * heap, where a typed array of more than 64 bytes is an allocation outside it.)
   */
  #tails: number[] = slots(MIN_SLOTS, 0);
  #vals: (V | undefined)[] = slots(MIN_SLOTS, undefined);
  /** When each slot's id was first set (insertion order, for {@linkcode values}). */
  #seqs: number[] = slots(MIN_SLOTS, 0);
  #mask = MIN_SLOTS - 1;
  /** Ids in the slots. */
  #count = 0;
  /** Ids without a hex tail: [insertion number, value] by id. */
  #other: Map<string, [number, V]> | undefined;
  #seq = 0;
  /** Ids are placed by {@linkcode slotKey}, not their tail (since a `set` probed too far). */
  #mixed = false;

  /** True once the table places ids by {@linkcode slotKey} (their tails collided; tests). */
  get mixed(): boolean {
    return this.#mixed;
  }

  get size(): number {
    return this.#count + (this.#other?.size ?? 0);
  }

  /** The slot holding `id` (whose tail is `k`), or -1. */
  #find(id: string, k: number): number {
    const ids = this.#ids;
    const tails = this.#tails;
    const mask = this.#mask;
    for (let i = k & mask;; i = (i + 1) & mask) {
      const s = ids[i];
      if (s === undefined) return -1;
      if (tails[i] === k && s === id) return i;
    }
  }

  get(id: string): V | undefined {
    const k = this.#mixed ? slotKey(id) : hexTail(id);
    if (k < 0) return this.#other?.get(id)?.[1];
    const i = this.#find(id, k);
    return i < 0 ? undefined : this.#vals[i];
  }

  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  /** Keeps `v` under `id`, replacing the value `id` had (which keeps its place in the order). */
  set(id: string, v: V): void {
    const k = this.#mixed ? slotKey(id) : hexTail(id);
    if (k < 0) {
      const other = this.#other ??= new Map();
      const had = other.get(id);
      if (had !== undefined) had[1] = v;
      else other.set(id, [this.#seq++, v]);
      return;
    }
    const ids = this.#ids;
    const tails = this.#tails;
    const mask = this.#mask;
    let i = k & mask;
    let probes = 0;
    for (;; i = (i + 1) & mask) {
      const s = ids[i];
      if (s === undefined) break;
      if (tails[i] === k && s === id) {
        this.#vals[i] = v;
        return;
      }
      probes++;
    }
    ids[i] = id;
    tails[i] = k;
    this.#vals[i] = v;
    this.#seqs[i] = this.#seq++;
    // at most half full: probes stay short
    if (++this.#count * 2 > mask + 1) this.#resize((mask + 1) * 2);
    // tails that collide (see MAX_PROBES): every id placed again by its slotKey
    else if (probes > MAX_PROBES && !this.#mixed) this.#mix();
  }

  /** Removes the value of `id`; true if there was one. */
  delete(id: string): boolean {
    const k = this.#mixed ? slotKey(id) : hexTail(id);
    if (k < 0) return this.#other?.delete(id) ?? false;
    let i = this.#find(id, k);
    if (i < 0) return false;
    // backward shift: each later entry of the probe run that may sit in slot i moves there
    const ids = this.#ids;
    const tails = this.#tails;
    const vals = this.#vals;
    const seqs = this.#seqs;
    const mask = this.#mask;
    let walked = 0;
    for (let j = (i + 1) & mask; ids[j] !== undefined; j = (j + 1) & mask) {
      walked++;
      const home = tails[j] & mask;
      // entry j stays when its home slot lies cyclically in (i, j]
      if (i <= j ? i < home && home <= j : i < home || home <= j) continue;
      ids[i] = ids[j];
      tails[i] = tails[j];
      vals[i] = vals[j];
      seqs[i] = seqs[j];
      i = j;
    }
    ids[i] = undefined;
    vals[i] = undefined;
    // a table that held many ids once (a burst of runs) shrinks again
    if (--this.#count * 8 < mask + 1 && mask + 1 > SHRINK_ABOVE) this.#resize((mask + 1) / 2);
    // a long run of consecutive tails (caller-given ids counting in their last digits) walked
    // at each delete: 40,000 such ids deleted in order took 0.8-1.8 s (see MAX_PROBES)
    else if (walked > MAX_PROBES && !this.#mixed) this.#mix();
    return true;
  }

  /** Places every id again by its {@linkcode slotKey} (see {@linkcode MAX_PROBES}). */
  #mix(): void {
    this.#mixed = true;
    const ids = this.#ids;
    const tails = this.#tails;
    for (let j = 0; j < ids.length; j++) if (ids[j] !== undefined) tails[j] = slotKey(ids[j]!);
    this.#resize(this.#mask + 1);
  }

  /** Moves every entry into new arrays of `n` slots (a power of two). */
  #resize(n: number): void {
    const ids = this.#ids;
    const tails = this.#tails;
    const vals = this.#vals;
    const seqs = this.#seqs;
    this.#ids = slots(n, undefined);
    this.#tails = slots(n, 0);
    this.#vals = slots(n, undefined);
    this.#seqs = slots(n, 0);
    this.#mask = n - 1;
    for (let j = 0; j < ids.length; j++) {
      const id = ids[j];
      if (id === undefined) continue;
      let i = tails[j] & this.#mask;
      while (this.#ids[i] !== undefined) i = (i + 1) & this.#mask;
      this.#ids[i] = id;
      this.#tails[i] = tails[j];
      this.#vals[i] = vals[j];
      this.#seqs[i] = seqs[j];
    }
  }

  /** The values in insertion order (a copy: changes made while reading it are not seen). */
  values(): IterableIterator<V> {
    const order: [number, V][] = [];
    const ids = this.#ids;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] !== undefined) order.push([this.#seqs[i], this.#vals[i]!]);
    }
    if (this.#other !== undefined) { for (const e of this.#other.values()) order.push(e); }
    order.sort((a, b) => a[0] - b[0]);
    return order.map((e) => e[1]).values();
  }

  clear(): void {
    this.#mixed = false;
    this.#ids = slots(MIN_SLOTS, undefined);
    this.#tails = slots(MIN_SLOTS, 0);
    this.#vals = slots(MIN_SLOTS, undefined);
    this.#seqs = slots(MIN_SLOTS, 0);
    this.#mask = MIN_SLOTS - 1;
    this.#count = 0;
    this.#other = undefined;
  }
}

/** A set of string ids that does not hash new strings (see {@linkcode IdMap}). */
export class IdSet {
  readonly #m = new IdMap<true>();

  get size(): number {
    return this.#m.size;
  }

  has(id: string): boolean {
    return this.#m.get(id) !== undefined;
  }

  add(id: string): this {
    this.#m.set(id, true);
    return this;
  }

  delete(id: string): boolean {
    return this.#m.delete(id);
  }
}
