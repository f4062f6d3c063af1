import { assertEquals, assertStrictEquals, assertThrows } from "../_assert.ts";
import { TransportError } from "../../src/errors.ts";
import {
  findMissingPermission,
  MissingPermissionError,
  permissionHint,
  rethrowIfPermission,
} from "../../src/core/permission_hint.ts";

Deno.test("permissionHint() names the flag from a real NotCapable error", () => {
  let err: unknown;
  try {
    Deno.readTextFileSync("/definitely/not/allowed.txt");
  } catch (e) {
    err = e;
  }
  // Under `deno test -A` the read is allowed and fails with NotFound instead: build one.
  if (!(err instanceof Deno.errors.NotCapable)) {
    err = new Deno.errors.NotCapable(
      'Requires read access to "/definitely/not/allowed.txt", run again with the --allow-read flag',
    );
  }
  const hint = permissionHint(err)!;
  assertEquals(
    hint,
    'missing permission: add --allow-read=/definitely/not/allowed.txt to the deno run flags (Requires read access to "/definitely/not/allowed.txt"); `stepflow permissions --flow F` prints the flags a flow needs',
  );
  assertStrictEquals(hint.includes("\n"), false);
});

Deno.test("findMissingPermission() searches causes, aggregates and plain messages", () => {
  const inner = new Deno.errors.NotCapable(
    'Requires run access to "python3", run again with the --allow-run flag',
  );
  const wrapped = new TransportError("could not start worker", { cause: inner });
  assertEquals(findMissingPermission(wrapped)?.flag, "--allow-run=python3");
  assertEquals(
    findMissingPermission(new AggregateError([new Error("x"), wrapped]))?.flag,
    "--allow-run=python3",
  );
  assertEquals(
    findMissingPermission(
      new Error(
        'step failed: Requires net access to "127.0.0.1:7001", run again with the --allow-net flag',
      ),
    )?.flag,
    "--allow-net=127.0.0.1:7001",
  );
  assertEquals(
    findMissingPermission(new Error("Requires env access, run again with the --allow-env flag"))
      ?.flag,
    "--allow-env",
  );
  assertEquals(
    findMissingPermission(new Error('Requires read access to "/a b", run again'))?.flag,
    "'--allow-read=/a b'",
  );
  assertStrictEquals(findMissingPermission(new Deno.errors.PermissionDenied("EACCES")), undefined);
  assertStrictEquals(permissionHint(new Error("other")), undefined);
  assertStrictEquals(
    permissionHint('Requires sys access to "hostname"'),
    permissionHint(
      new Error('Requires sys access to "hostname", run again with the --allow-sys flag'),
    ),
  );
});

Deno.test("rethrowIfPermission() rethrows only permission errors, keeping the cause", () => {
  rethrowIfPermission(new Error("not a permission"));
  const cause = new Deno.errors.NotCapable(
    'Requires env access to "API_KEY", run again with the --allow-env flag',
  );
  const e = assertThrows(
    () => rethrowIfPermission(cause),
    MissingPermissionError,
    "--allow-env=API_KEY",
  );
  assertStrictEquals(e.cause, cause);
  assertStrictEquals(findMissingPermission(e)?.flag, "--allow-env=API_KEY");
});

Deno.test("permissionHint() finds the permission quoted in a failed FlowResult", () => {
  const result = {
    outcome: "failed",
    error: {
      code: 500,
      message: 'step "load" failed',
      data: {
        stack: [{
          error: 'step "load" failed',
          attachments: [
            "Component: /load_file",
            "Cannot read '/d/x.json': Requires read access to \"/d/x.json\", run again with the --allow-read flag",
          ],
        }],
      },
    },
  };
  assertEquals(findMissingPermission(result)?.flag, "--allow-read=/d/x.json");
  assertStrictEquals(
    permissionHint({ outcome: "failed", error: { code: 500, message: "x" } }),
    undefined,
  );
});

Deno.test("findMissingPermission() falls back to a flag named without a value", () => {
  const e = new Error("Cannot read flow file 'f.yaml': permission denied (run with --allow-read)");
  assertEquals(findMissingPermission(e), { kind: "read", flag: "--allow-read" });
});
