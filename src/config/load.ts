/**
 * Loading and discovering `stepflow-config.yml` (stepflow 0.8 §2, §2.6, §7): everything of
 * src/config/load_file.ts, with the zod models of configs and flows loaded up front so that the
 * synchronous {@linkcode parseConfigValue} (and src/flow/load_file.ts's `parseFlowValue`) never
 * need loading on demand (src/core/lazy_check.ts). The CLI's `run` imports load_file.ts instead.
 * @module
 */
import { useZodConfigCheck } from "./load_file.ts";
import { zodConfigCheck } from "./shapes_zod.ts";
import { useZodFlowCheck } from "../flow/load_file.ts";
import { zodFlowCheck } from "../flow/shapes_zod.ts";

useZodConfigCheck(zodConfigCheck);
useZodFlowCheck(zodFlowCheck);

export * from "./load_file.ts";
