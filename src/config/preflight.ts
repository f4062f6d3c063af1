/**
 * Preflight: the checks of a flow against the config it will run on, before anything starts.
 * The flow's own diagnostics (src/flow/validate.ts) plus, with a config:
 * - a step component that no route matches (warning, with the route patterns);
 * - a component whose (input-independent) route sends it to a builtin or mock plugin that does
 *   not offer it (warning, with the closest name);
 * - inline test configs (`test.config`) checked as configs (src/config/validate.ts).
 * The config's own diagnostics come from {@linkcode validateConfig}.
 * @module
 */
import type { Diagnostic } from "../core/diagnostics.ts";
import { editDistance } from "../core/suggest.ts";
import { checkFlowDiagnostics, type FlowCheckHooks } from "../flow/validate.ts";
import { type LoadedFlow, parseFlowValue } from "../flow/load_file.ts";
import type { Flow } from "../flow/model.ts";
import type { JsonValue } from "../json/exact_json.ts";
import type { Config, LoadedConfig } from "./model.ts";
import { Router } from "./router.ts";
import { validateConfig, validateConfigValue } from "./validate.ts";

export { validateConfig };

/**
 * The components of the builtin plugin (stepflow 0.8 §4, plus the `/chat` extension).
 * tests/flow/validate_test.ts checks it against the plugin's own list.
 */
export const BUILTIN_COMPONENT_NAMES: readonly string[] = [
  "/chat",
  "/create_messages",
  "/openai",
  "/eval",
  "/iterate",
  "/load_file",
  "/map",
  "/put_blob",
  "/get_blob",
  "/wait_for",
];

/** Options of {@linkcode validateFlow}. */
export interface ValidateOptions {
  /**
   * The component names a plugin type offers, when known without starting it (`builtin`).
   * Mock components always come from the config.
   * @default the 0.8 list ({@linkcode BUILTIN_COMPONENT_NAMES}) for `builtin`, unknown otherwise
   */
  componentsOfType?: (type: string) => readonly string[] | undefined;
}

/**
 * All diagnostics of a flow (§1.9) and, with `config`, of its routing (`config` may be a
 * {@linkcode Config} or a {@linkcode LoadedConfig}; its own diagnostics come from
 * {@linkcode validateConfig}). `flow` is a {@linkcode LoadedFlow}, or a flow object (as in a
 * flow file), which is checked against the flow model first.
 * @throws {FlowLoadError} when a flow object does not fit the flow model (JSON path named).
 */
export function validateFlow(
  flow: LoadedFlow | Flow,
  config?: Config | LoadedConfig,
  options: ValidateOptions = {},
): Diagnostic[] {
  // (a non-object goes to parseFlowValue, which says what a flow is; `in` threw on null)
  const loaded = flow !== null && typeof flow === "object" && "flow" in flow && !("schema" in flow)
    ? flow
    : parseFlowValue(flow as unknown as JsonValue);
  const cfg = config && "config" in config && "workingDirectory" in config
    ? (config as LoadedConfig).config
    : config as Config | undefined;
  const hooks: FlowCheckHooks = { checkTestConfig: validateConfigValue };
  if (cfg) {
    let router: Router | undefined;
    try {
      router = new Router(cfg);
    } catch {
      router = undefined; // validateConfig reports it
    }
    if (router) hooks.checkComponent = routeCheck(router, componentLister(cfg, options));
  }
  return checkFlowDiagnostics(loaded, hooks);
}

/** For a plugin name: the components it is known to offer, or undefined when unknown. */
type ComponentLister = (plugin: string) => { type: string; names: readonly string[] } | undefined;

function componentLister(cfg: Config, options: ValidateOptions): ComponentLister {
  return (plugin) => {
    const p = cfg.plugins?.[plugin];
    if (!p) return undefined;
    if (p.type === "mock") return { type: "mock", names: Object.keys(p.components ?? {}) };
    const names = options.componentsOfType?.(p.type) ??
      (p.type === "builtin" ? BUILTIN_COMPONENT_NAMES : undefined);
    return names ? { type: p.type, names } : undefined;
  };
}

function routeCheck(router: Router, known: ComponentLister): FlowCheckHooks["checkComponent"] {
  return (step, i, c) => {
    const at = ["steps", i, "component"];
    if (!router.match(step.component)) {
      c.add(
        "warning",
        "no_matching_route",
        `No route matches component '${step.component}' of step '${step.id}'`,
        at,
        {
          hint: router.patterns.length === 0
            ? 'the config has no routes: add one, e.g. routes: {"/builtin/{*component}": [{plugin: builtin}]}'
            : `routes are: ${router.patterns.join(", ")}`,
        },
      );
      return;
    }
    const target = router.resolveStatic(step.component);
    const offered = target ? known(target.plugin) : undefined;
    if (target && offered && !offered.names.includes(target.component)) {
      const close = offered.names.find((n) => editDistance(n, target.component) <= 2);
      c.add(
        "warning",
        "unknown_component",
        `Component '${step.component}' of step '${step.id}' is routed to ${offered.type} ` +
          `plugin '${target.plugin}' as '${target.component}', which it does not offer`,
        at,
        {
          hint: close
            ? `did you mean '${close}'?`
            : offered.names.length
            ? `it offers: ${offered.names.join(", ")}`
            : undefined,
        },
      );
    }
  };
}
