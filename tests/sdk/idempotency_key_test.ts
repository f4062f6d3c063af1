import { assertStrictEquals } from "../_assert.ts";
import { Context } from "../../sdk/mod.ts";

const call = () => Promise.resolve(null);

Deno.test("Context.idempotencyKey: run id + step id, the same for every attempt", () => {
  const obs = { run_id: "r-1", step_id: "charge" };
  assertStrictEquals(new Context(call, obs, 1).idempotencyKey, "r-1/charge");
  assertStrictEquals(new Context(call, obs, 3).idempotencyKey, "r-1/charge");
  assertStrictEquals(new Context(call, { ...obs, step_id: "mail" }, 1).idempotencyKey, "r-1/mail");
});

Deno.test("Context.idempotencyKey: the engine's own key wins; none without run and step", () => {
  const obs = { run_id: "r-1", step_id: "s", idempotency_key: "root/s/7" };
  assertStrictEquals(new Context(call, obs, 1).idempotencyKey, "root/s/7");
  assertStrictEquals(new Context(call, { run_id: "r-1" }, 1).idempotencyKey, undefined);
});
