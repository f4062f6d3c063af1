/**
 * "Did you mean" suggestions for misspelt keys and names.
 * @module
 */

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2][j - 2] + 1);
      }
      d[i][j] = v;
    }
  }
  return d[a.length][b.length];
}

/**
 * Keys people write, with what they meant: a string is the key to suggest (when it is known in
 * that place); an object gives an explanation instead.
 */
export type KeyAliases = Readonly<
  Record<string, string | { hint: string; onlyWhereKnown?: string }>
>;

function normalizeKey(k: string): string {
  return k.replace(/[_\-\s]/g, "").toLowerCase();
}

/**
 * What to tell a user who wrote the unknown key `key` where `known` keys are allowed: a
 * "did you mean" hint (from `aliases`, then case/underscore folding, then edit distance), an
 * explanation from `aliases`, or undefined.
 */
export function suggestName(
  key: string,
  known: readonly string[],
  aliases: KeyAliases = {},
): string | undefined {
  const alias = Object.hasOwn(aliases, key) ? aliases[key] : undefined;
  if (typeof alias === "string" && known.includes(alias)) return `did you mean '${alias}'?`;
  // an explanation tied to a key (`onlyWhereKnown`) is given only where that key is allowed
  if (
    typeof alias === "object" &&
    (alias.onlyWhereKnown === undefined || known.includes(alias.onlyWhereKnown))
  ) return alias.hint;
  const norm = normalizeKey(key);
  const same = known.find((k) => normalizeKey(k) === norm);
  if (same) return `did you mean '${same}'?`;
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = editDistance(norm, normalizeKey(k));
    if (dist < bestD) {
      bestD = dist;
      best = k;
    }
  }
  const limit = norm.length <= 4 ? 1 : 2;
  if (best !== undefined && bestD <= limit) return `did you mean '${best}'?`;
  return undefined;
}
