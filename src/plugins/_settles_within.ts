/**
 * Bounded waiting for the plugins' shutdown and failure paths (step services, MCP).
 * @module
 */

/**
 * Waits for `p` to settle, at most `ms` milliseconds; its timer is cleared either way, so no
 * timer outlives the wait.
 * @returns true if `p` settled (fulfilled or rejected) in time.
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((r) => timer = setTimeout(() => r(false), ms));
  try {
    return await Promise.race([p.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
