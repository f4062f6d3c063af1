/**
 * `deno bench` entries for src/core/id_map.ts: what a map item does to a table of ids (a new
 * UUID set, found again through another string of the same text, as an answer's id is, and
 * deleted; 16 ids live, as with `max_concurrency: 16`), against a `Map` keyed by the string,
 * which hashes each new string once (~0.5 µs here; docs/performance.md, seventh pass).
 * Results: docs/performance.md, "ninth pass (wave 11)".
 * @module
 */
import { IdMap } from "../src/core/id_map.ts";

const N = 10_000;
const LIVE = 16;
/** Ids as new strings each round, and another new string of each (as parsed from an answer). */
function ids(): [string[], string[]] {
  const a = Array.from({ length: N }, () => crypto.randomUUID());
  return [a, JSON.parse(JSON.stringify(a))];
}

Deno.bench(
  "IdMap: 10,000 ids set, found and deleted, 16 live",
  { group: "ids", baseline: true },
  (b) => {
    const [set, found] = ids();
    const m = new IdMap<number>();
    b.start();
    for (let i = 0; i < N; i++) {
      m.set(set[i], i);
      if (i >= LIVE) {
        m.get(found[i - LIVE]);
        m.delete(found[i - LIVE]);
      }
    }
    b.end();
  },
);

Deno.bench("Map<string>: the same", { group: "ids" }, (b) => {
  const [set, found] = ids();
  const m = new Map<string, number>();
  b.start();
  for (let i = 0; i < N; i++) {
    m.set(set[i], i);
    if (i >= LIVE) {
      m.get(found[i - LIVE]);
      m.delete(found[i - LIVE]);
    }
  }
  b.end();
});
