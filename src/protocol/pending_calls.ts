/**
 * The engine's request ids and the table of its open calls, found by a number rather than by
 * hashing a new string (issue 17).
 *
 * V8 computes a string's hash the first time the string is a Map key, and here that costs about
 * 0.5 µs (measured: first `Map.get` of a fresh 36- or 8-character string 0.5-1.4 µs, a number
 * 10 ns, the same string again 15 ns). Every call paid it twice: for its id when it was made and
 * for the id parsed from its answer (a new string). So an id is a random UUID's first 24
 * characters, the same for the whole process, and a counter in its last 12 hex digits; the table
 * is keyed by that counter, read from an answer's id without hashing, and an entry is taken only
 * when its whole id matches. The ids are still UUID strings (stepflow 0.8: "the engine uses UUID
 * strings"), unique within the process; ids of another shape (a peer given its own `newId`) are
 * kept by string.
 * @module
 */
import type { RequestId } from "./envelope.ts";

/** The first 24 characters of this process's request ids: `xxxxxxxx-xxxx-4xxx-yxxx-`. */
const PREFIX = crypto.randomUUID().slice(0, 24);
const ZEROS = "000000000000";
let counter = 0;

/** A new request id: a UUID string whose last 12 hex digits count the ids made by this process. */
export function newRequestId(): string {
  const hex = (++counter).toString(16);
  return PREFIX + (hex.length < 12 ? ZEROS.slice(hex.length) + hex : hex.slice(-12));
}

/** The counter in the last 12 hex digits of a 36-character id, or -1 (another shape). */
export function counterOf(id: RequestId): number {
  if (typeof id !== "string" || id.length !== 36) return -1;
  let n = 0;
  for (let i = 24; i < 36; i++) {
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

/** What the table needs of an entry: its whole id. */
interface HasId {
  readonly id: RequestId;
}

/** Open calls by request id (see the module doc). */
export class PendingCalls<T extends HasId> {
  readonly #byCounter = new Map<number, T>();
  /** Entries whose id has another shape. */
  readonly #other = new Map<RequestId, T>();

  get size(): number {
    return this.#byCounter.size + this.#other.size;
  }

  /** The entry of `id`, if open. */
  get(id: RequestId): T | undefined {
    const k = counterOf(id);
    if (k < 0) return this.#other.size === 0 ? undefined : this.#other.get(id);
    const e = this.#byCounter.get(k);
    return e !== undefined && e.id === id ? e : undefined;
  }

  has(id: RequestId): boolean {
    return this.get(id) !== undefined;
  }

  /** Adds `entry` under its id. */
  add(entry: T): void {
    const k = counterOf(entry.id);
    if (k < 0) this.#other.set(entry.id, entry);
    else this.#byCounter.set(k, entry);
  }

  /** Removes the entry of `id`; true if there was one. */
  delete(id: RequestId): boolean {
    const k = counterOf(id);
    if (k < 0) return this.#other.delete(id);
    const e = this.#byCounter.get(k);
    if (e === undefined || e.id !== id) return false;
    return this.#byCounter.delete(k);
  }

  /** Every entry (a copy). */
  values(): T[] {
    return [...this.#byCounter.values(), ...this.#other.values()];
  }

  clear(): void {
    this.#byCounter.clear();
    this.#other.clear();
  }
}
