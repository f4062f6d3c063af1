/**
 * SIGXFSZ: a process that writes past its file size limit (`ulimit -f`, systemd's `LimitFSIZE`)
 * is killed by this signal unless it handles it. `stepflow serve` with its SQLite file under such
 * a limit died with "File size limit exceeded" in the middle of a commit, taking every run in
 * progress with it; handled, the write fails with EFBIG instead ("File too large"), and the store
 * reports that as it reports a full disk (the run fails with 507, `/health` answers 503).
 * @module
 */

let installed = false;

/**
 * Makes a write past the process's file size limit fail with an error instead of killing the
 * process (a no-op listener for SIGXFSZ; it does not keep the process alive). Idempotent; does
 * nothing where the signal does not exist (Windows).
 */
export function ignoreFileSizeSignal(): void {
  if (installed || Deno.build.os === "windows") return;
  installed = true;
  try {
    Deno.addSignalListener("SIGXFSZ", () => {});
  } catch {
    // a runtime that cannot listen for it: the default action stays
  }
}
