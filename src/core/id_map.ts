/**
 * A map of values by string id (a run id, a request id) that does not hash new strings (issue
 * 17).
 *
 * V8 computes a string's hash the first time the string is a Map key, and here that costs about
 * 0.5 µs (measured: the first `Map.get` of a fresh 36- or 8-character string 0.5-1.4 µs, of a
 * number 10 ns, of the same string again 15 ns). Run ids and request ids are new strings at every
 * run and call — a request's answer brings its id back as yet another string — so each map
 * item paid it three times. An id of a UUID's shape is kept under the number its last 7 hex
 * digits make, read without hashing; the value is taken only when its whole id matches. An
 * id of another shape, or one whose 7 digits another id kept has already, is kept by its text.
 * Iteration is in insertion order, as a Map's.
 * @module
 */

/**
 * The number in the last 7 hex digits of a 36-character id (a UUID's shape), or -1: below 2^28,
 * a small integer V8 keeps unboxed (a larger one would be a heap number per lookup).
 */
export function hexTail(id: string): number {
  if (id.length !== 36) return -1;
  let n = 0;
  for (let i = 29; i < 36; i++) {
    const c = id.charCodeAt(i);
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    n = n * 16 + d;
  }
  return n;
}

/** Values by string id, each value knowing its id (see the module doc). */
export class IdMap<V> {
  readonly #m = new Map<number | string, V>();
  readonly #idOf: (v: V) => string;
  /** Values kept by their text although their id has a hex tail (another id had it). */
  #byText = 0;

  /** @param idOf the id of a value (as it was given to {@linkcode set}). */
  constructor(idOf: (v: V) => string) {
    this.#idOf = idOf;
  }

  get size(): number {
    return this.#m.size;
  }

  get(id: string): V | undefined {
    const k = hexTail(id);
    if (k < 0) return this.#m.get(id);
    const v = this.#m.get(k);
    if (v !== undefined && this.#idOf(v) === id) return v;
    return this.#byText > 0 ? this.#m.get(id) : undefined;
  }

  has(id: string): boolean {
    return this.get(id) !== undefined;
  }

  /** Keeps `v` under `id` (its id), replacing the value `id` had. */
  set(id: string, v: V): void {
    const k = hexTail(id);
    if (k < 0) {
      this.#m.set(id, v);
      return;
    }
    const cur = this.#m.get(k);
    if (cur !== undefined && this.#idOf(cur) === id) this.#m.set(k, v);
    else if (this.#byText > 0 && this.#m.has(id)) this.#m.set(id, v);
    else if (cur === undefined) this.#m.set(k, v);
    else {
      // another id has these 7 digits: this one by its text
      this.#byText++;
      this.#m.set(id, v);
    }
  }

  /** Removes the value of `id`; true if there was one. */
  delete(id: string): boolean {
    const k = hexTail(id);
    if (k < 0) return this.#m.delete(id);
    const cur = this.#m.get(k);
    if (cur !== undefined && this.#idOf(cur) === id) return this.#m.delete(k);
    if (this.#byText > 0 && this.#m.delete(id)) {
      this.#byText--;
      return true;
    }
    return false;
  }

  /** The values, in insertion order (live, as a Map's iterator). */
  values(): MapIterator<V> {
    return this.#m.values();
  }

  clear(): void {
    this.#m.clear();
    this.#byText = 0;
  }
}

/** A set of string ids that does not hash new strings (see {@linkcode IdMap}). */
export class IdSet {
  readonly #m = new IdMap<string>((id) => id);

  get size(): number {
    return this.#m.size;
  }

  has(id: string): boolean {
    return this.#m.get(id) !== undefined;
  }

  add(id: string): this {
    this.#m.set(id, id);
    return this;
  }

  delete(id: string): boolean {
    return this.#m.delete(id);
  }
}
