/**
 * The engine's request ids and the table of its open calls, found without hashing new strings
 * (src/core/id_map.ts; issue 17): each call's id, and the id parsed from its answer (another new
 * string), cost about 0.5 µs each to hash here. An id is a random UUID's first 24 characters, the
 * same for the whole process, and a counter in its last 12 hex digits: still a UUID string
 * (stepflow 0.8: "the engine uses UUID strings"), unique within the process. Ids of other shapes
 * (a peer given its own `newId`) work as well.
 * @module
 */
import { IdMap } from "../core/id_map.ts";
import type { RequestId } from "./envelope.ts";

/** The first 24 characters of this process's request ids: `xxxxxxxx-xxxx-4xxx-yxxx-`. */
const PREFIX = crypto.randomUUID().slice(0, 24);
let counter = 0;

/** A new request id: a UUID string whose last 12 hex digits count the ids made by this process. */
export function newRequestId(): string {
  return PREFIX + (++counter).toString(16).padStart(12, "0");
}

/** What the table needs of an entry: its whole id. */
interface HasId {
  readonly id: RequestId;
}

/** Open calls by request id. */
export class PendingCalls<T extends HasId> {
  readonly #byText = new IdMap<T>();
  /** Entries with a number for an id (kept as a Map keeps them, as before). */
  readonly #byNumber = new Map<Exclude<RequestId, string>, T>();

  get size(): number {
    return this.#byText.size + this.#byNumber.size;
  }

  /** The entry of `id`, if open. */
  get(id: RequestId): T | undefined {
    return typeof id === "string" ? this.#byText.get(id) : this.#byNumber.get(id);
  }

  has(id: RequestId): boolean {
    return this.get(id) !== undefined;
  }

  /** Adds `entry` under its id. */
  add(entry: T): void {
    const id = entry.id;
    if (typeof id === "string") this.#byText.set(id, entry);
    else this.#byNumber.set(id, entry);
  }

  /** Removes the entry of `id`; true if there was one. */
  delete(id: RequestId): boolean {
    return typeof id === "string" ? this.#byText.delete(id) : this.#byNumber.delete(id);
  }

  /** Every entry (a copy). */
  values(): T[] {
    return [...this.#byText.values(), ...this.#byNumber.values()];
  }

  clear(): void {
    this.#byText.clear();
    this.#byNumber.clear();
  }
}
