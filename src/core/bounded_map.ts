/**
 * Maps items with at most `concurrency` calls in flight, pulling items lazily (extension, issue
 * 5; used by `map`'s `max_concurrency`). Only `concurrency` worker loops exist at any time, so a
 * 10,000-item input with a limit of 4 never holds more than 4 pending calls; memory grows only
 * with the results array.
 * @module
 */

/** Options of {@linkcode boundedMap}. */
export interface BoundedMapOptions {
  /** Most calls in flight: a positive integer (or Infinity = one loop per item). */
  concurrency: number;
  /** When aborted, no new item starts; the returned promise rejects with the reason. */
  signal?: AbortSignal;
}

/**
 * Calls `fn(item, index)` for every item, at most `concurrency` at once, in index order of start.
 * @returns the results in item order.
 * @throws {RangeError} for an invalid `concurrency`; the first error `fn` throws (remaining
 *   items are not started; calls in flight are awaited first); the signal's reason on abort.
 */
export async function boundedMap<T, R>(
  items: readonly T[],
  fn: (item: T, index: number) => Promise<R>,
  options: BoundedMapOptions,
): Promise<R[]> {
  const { concurrency, signal } = options;
  if (!(concurrency === Infinity || (Number.isInteger(concurrency) && concurrency > 0))) {
    throw new RangeError(`boundedMap: concurrency must be a positive integer, got ${concurrency}`);
  }
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const loop = async () => {
    while (!failure && next < items.length) {
      if (signal?.aborted) {
        failure ??= { error: signal.reason };
        return;
      }
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (e) {
        failure ??= { error: e };
      }
    }
  };
  const loops = Math.min(concurrency, items.length);
  const running: Promise<void>[] = [];
  for (let k = 0; k < loops; k++) running.push(loop());
  await Promise.all(running);
  if (failure) throw failure.error;
  return results;
}
