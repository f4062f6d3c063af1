/**
 * Exit codes of the `stepflow` command (documented in README.md and docs/cli.md).
 * @module
 */

/** The run succeeded (or the command did what it was asked). */
export const EXIT_OK = 0;
/** The run's outcome was `failed` or `skipped`; tests failed; validation found errors. */
export const EXIT_FAILED = 1;
/** Bad usage, or an invalid flow or config file (nothing was run). */
export const EXIT_INVALID = 2;
/** A permission is missing (scoped `deno run`); the message names the flag to add. */
export const EXIT_PERMISSION = 3;
/** Cancelled by Ctrl-C / SIGTERM (128 + SIGINT). */
export const EXIT_CANCELLED = 130;
