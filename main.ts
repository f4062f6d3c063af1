/**
 * The `stepflow` command-line entry: parses argv and hands over to src/cli. Nothing else.
 * @module
 */
import { main } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
